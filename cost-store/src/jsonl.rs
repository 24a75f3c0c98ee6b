//! JSON lines: one record per line, appended. The simplest store: readable with `jq`, no
//! server, no schema (a record's id is its line number).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use crate::record::CallRecord;
use crate::store::{Repriced, Store, StoreError, TimeRange};

/// A JSON-lines file of call records.
pub struct JsonLinesStore {
    path: PathBuf,
    file: File,
}

impl JsonLinesStore {
    /// Opens `path` for appending, creating it when missing.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| io(&path, source))?;
        Ok(JsonLinesStore { path, file })
    }

    fn read_all(&self) -> Result<Vec<CallRecord>, StoreError> {
        let mut records = Vec::new();
        self.read_each(&mut |record| records.push(record))?;
        Ok(records)
    }

    /// Reads the file a line at a time, handing each record (its id its line number) to
    /// `each`.
    fn read_each(&self, each: &mut dyn FnMut(CallRecord)) -> Result<(), StoreError> {
        let file = File::open(&self.path).map_err(|source| io(&self.path, source))?;
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| io(&self.path, source))?;
            if line.trim().is_empty() {
                continue;
            }
            let line_number = index as i64 + 1;
            let mut record: CallRecord =
                serde_json::from_str(&line).map_err(|e| StoreError::Corrupt {
                    location: format!("{}:{line_number}", self.path.display()),
                    message: e.to_string(),
                })?;
            record.id = Some(line_number);
            each(record);
        }
        Ok(())
    }
}

fn io(path: &std::path::Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn line(record: &CallRecord) -> Result<String, StoreError> {
    let mut record = record.clone();
    record.id = None;
    serde_json::to_string(&record).map_err(|e| StoreError::Corrupt {
        location: "record".into(),
        message: e.to_string(),
    })
}

impl Store for JsonLinesStore {
    fn append(&mut self, records: &[CallRecord]) -> Result<(), StoreError> {
        // One write of whole lines, so a batch is never split by another writer's lines.
        let mut text = String::new();
        for record in records {
            text.push_str(&line(record)?);
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| io(&self.path, source))
    }

    fn scan(
        &mut self,
        range: &TimeRange,
        each: &mut dyn FnMut(CallRecord),
    ) -> Result<u64, StoreError> {
        let mut handed = 0;
        self.read_each(&mut |record| {
            if range.contains(record.at_ms) {
                handed += 1;
                each(record);
            }
        })?;
        Ok(handed)
    }

    fn reprice(&mut self, repriced: &[Repriced]) -> Result<(), StoreError> {
        let mut records = self.read_all()?;
        for update in repriced {
            if let Some(record) = records.iter_mut().find(|r| r.id == Some(update.id)) {
                crate::apply_reprice(record, update);
            }
        }
        // Rewrite beside the file, then replace it: a crash leaves the old file whole.
        let temporary = self.path.with_extension("jsonl.reprice");
        {
            let file = File::create(&temporary).map_err(|source| io(&temporary, source))?;
            let mut out = BufWriter::new(file);
            for record in &records {
                writeln!(out, "{}", line(record)?).map_err(|source| io(&temporary, source))?;
            }
            out.flush().map_err(|source| io(&temporary, source))?;
        }
        std::fs::rename(&temporary, &self.path).map_err(|source| io(&self.path, source))?;
        *self = JsonLinesStore::open(self.path.clone())?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
