//! JSON lines: one record per line, appended. The simplest store: readable with `jq`, no
//! server, no schema (a record's id is its line number).

use std::collections::HashMap;
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

    /// Reads the file a line at a time, handing each record (its id its line number) to
    /// `each`.
    fn read_each(&self, each: &mut dyn FnMut(CallRecord)) -> Result<(), StoreError> {
        self.read_lines(&mut |_, record| {
            each(record);
            Ok(())
        })
    }

    /// [`JsonLinesStore::read_each`] with each record's line as written; an error of `each`
    /// stops the reading.
    fn read_lines(
        &self,
        each: &mut dyn FnMut(&str, CallRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
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
            each(&line, record)?;
        }
        Ok(())
    }

    /// Writes the file anew beside it, a line at a time, with `repriced` applied (lines they do
    /// not touch copied as written); the new file is on disk when this returns.
    fn write_repriced(
        &self,
        repriced: &[Repriced],
        temporary: &std::path::Path,
    ) -> Result<(), StoreError> {
        let mut updates: HashMap<i64, Vec<&Repriced>> = HashMap::new();
        for update in repriced {
            updates.entry(update.id).or_default().push(update);
        }
        let file = File::create(temporary).map_err(|source| io(temporary, source))?;
        let mut out = BufWriter::new(file);
        self.read_lines(&mut |text, mut record| {
            let written = match record.id.and_then(|id| updates.get(&id)) {
                Some(updates) => {
                    for update in updates {
                        crate::apply_reprice(&mut record, update);
                    }
                    writeln!(out, "{}", line(&record)?)
                }
                None => writeln!(out, "{text}"),
            };
            written.map_err(|source| io(temporary, source))
        })?;
        let file = out
            .into_inner()
            .map_err(|e| io(temporary, e.into_error()))?;
        file.sync_all().map_err(|source| io(temporary, source))
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

    /// Rewrites the file beside it a record at a time (memory grows with `repriced`, not with
    /// the file), then replaces it: a crash, or a corrupt line, leaves the old file whole.
    fn reprice(&mut self, repriced: &[Repriced]) -> Result<(), StoreError> {
        let temporary = self.path.with_extension("jsonl.reprice");
        if let Err(error) = self.write_repriced(repriced, &temporary) {
            let _ = std::fs::remove_file(&temporary);
            return Err(error);
        }
        std::fs::rename(&temporary, &self.path).map_err(|source| io(&self.path, source))?;
        *self = JsonLinesStore::open(self.path.clone())?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
