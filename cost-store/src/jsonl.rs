//! JSON lines: one record per line, appended. The simplest store: readable with `jq`, no
//! server, no schema (a record's id is its line number).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use crate::record::CallRecord;
use crate::store::{Repriced, Store, StoreError, TimeRange};
use crate::unconfirmed::{Unconfirmed, without};

/// A JSON-lines file of call records.
///
/// A batch whose write fails part way (a full disk) is finished before the next: its bytes
/// not yet written come first, and a retry leaves out its records, so the file holds each
/// record once and no broken line (with other processes appending to the same file, their
/// lines could then fall inside that batch's unfinished line).
pub struct JsonLinesStore {
    path: PathBuf,
    file: File,
    /// Whether the file's last line was checked (and, cut short, ended) before this store's
    /// first append.
    end_checked: bool,
    /// A batch partly written: the bytes still to write, and its records.
    unfinished: Option<Unconfirmed<CallRecord, Vec<u8>>>,
    /// Fails the writes past this many bytes, as a full disk would (tests).
    #[cfg(test)]
    room: Option<usize>,
    /// Out of room, the next write is interrupted (a signal) before it fails (tests).
    #[cfg(test)]
    interrupt_when_full: bool,
    /// Appended to the file by "another process" while a reprice writes its copy (tests).
    #[cfg(test)]
    appended_while_repricing: Option<Vec<u8>>,
}

impl JsonLinesStore {
    /// Opens `path` for appending, creating it when missing. Before its first append, a file
    /// whose last line was cut short (a process killed while it wrote, a disk that filled) has
    /// that line ended: the records written next each stay a line of their own, and the cut
    /// one is reported by its line number (`StoreError::Corrupt`) instead of taking the next
    /// record with it. Opened only to be read (a report), the file is left as it is.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| io(&path, source))?;
        Ok(JsonLinesStore {
            path,
            file,
            end_checked: false,
            unfinished: None,
            #[cfg(test)]
            room: None,
            #[cfg(test)]
            interrupt_when_full: false,
            #[cfg(test)]
            appended_while_repricing: None,
        })
    }

    /// Appends `bytes`; on an error, how many were written before it.
    fn write_counting(&mut self, bytes: &[u8]) -> Result<(), (usize, std::io::Error)> {
        let mut written = 0;
        while written < bytes.len() {
            let rest = &bytes[written..];
            #[cfg(not(test))]
            let wrote = self.file.write(rest);
            #[cfg(test)]
            let wrote = self.write_within_room(rest);
            match wrote {
                Ok(0) => return Err((written, std::io::ErrorKind::WriteZero.into())),
                Ok(count) => {
                    written += count;
                    #[cfg(test)]
                    if let Some(room) = self.room.as_mut() {
                        *room -= count;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err((written, error)),
            }
        }
        Ok(())
    }

    /// Writes what of `bytes` the room left takes; out of room, fails as a full disk does,
    /// once interrupted first (which is retried) (tests).
    #[cfg(test)]
    fn write_within_room(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.room {
            Some(0) if std::mem::take(&mut self.interrupt_when_full) => {
                Err(std::io::ErrorKind::Interrupted.into())
            }
            Some(0) => Err(std::io::ErrorKind::StorageFull.into()),
            Some(room) => self.file.write(&bytes[..bytes.len().min(room)]),
            None => self.file.write(bytes),
        }
    }

    /// Writes the rest of a batch partly written, if any: its records once written.
    fn finish_unfinished(&mut self) -> Result<Option<Vec<CallRecord>>, StoreError> {
        let Some(batch) = self.unfinished.take() else {
            return Ok(None);
        };
        self.write_batch(&batch.items, &batch.mark)?;
        Ok(Some(batch.items))
    }

    /// Writes `bytes`, the rest of `records`' lines; what an error leaves unwritten (some
    /// written first) is kept as unfinished, to be written before the next batch.
    fn write_batch(&mut self, records: &[CallRecord], bytes: &[u8]) -> Result<(), StoreError> {
        match self.write_counting(bytes) {
            Ok(()) => Ok(()),
            Err((written, source)) => {
                if written > 0 {
                    self.unfinished = Some(Unconfirmed {
                        mark: bytes[written..].to_vec(),
                        items: records.to_vec(),
                    });
                }
                Err(io(&self.path, source))
            }
        }
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
        let mut reader = BufReader::new(file);
        let mut bytes = Vec::new();
        let mut line_number = 0;
        loop {
            bytes.clear();
            let read = reader
                .read_until(b'\n', &mut bytes)
                .map_err(|source| io(&self.path, source))?;
            // The end; or a last line without its newline: one being written (by another
            // process, while this one reads), not a record yet.
            if read == 0 || bytes.last() != Some(&b'\n') {
                break;
            }
            line_number += 1;
            let corrupt = |message: String| StoreError::Corrupt {
                location: format!("{}:{line_number}", self.path.display()),
                message,
            };
            let line = std::str::from_utf8(&bytes[..bytes.len() - 1])
                .map_err(|e| corrupt(e.to_string()))?;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let mut record: CallRecord =
                serde_json::from_str(line).map_err(|e| corrupt(e.to_string()))?;
            record.id = Some(line_number);
            each(line, record)?;
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

impl Drop for JsonLinesStore {
    /// Tries once more to finish a batch partly written, so the file does not end in a broken
    /// line.
    fn drop(&mut self) {
        let _ = self.finish_unfinished();
    }
}

/// Whether the file at `path` ends in a line without its newline.
fn ends_in_a_cut_line(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
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
        if !self.end_checked {
            if ends_in_a_cut_line(&self.path).map_err(|source| io(&self.path, source))? {
                self.file
                    .write_all(b"\n")
                    .map_err(|source| io(&self.path, source))?;
            }
            self.end_checked = true;
        }
        let records = match self.finish_unfinished()? {
            // A retry brings its records again.
            Some(written) => Cow::Owned(without(records, &written)),
            None => Cow::Borrowed(records),
        };
        // One write of whole lines, so a batch is never split by another writer's lines.
        let mut text = String::new();
        for record in records.iter() {
            text.push_str(&line(record)?);
            text.push('\n');
        }
        self.write_batch(&records, text.as_bytes())
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
        self.finish_unfinished()?;
        let temporary = self.path.with_extension("jsonl.reprice");
        let length = || {
            std::fs::metadata(&self.path)
                .map(|m| m.len())
                .map_err(|source| io(&self.path, source))
        };
        let before = length()?;
        let written = self.write_repriced(repriced, &temporary).and_then(|()| {
            #[cfg(test)]
            if let Some(line) = self.appended_while_repricing.take() {
                OpenOptions::new()
                    .append(true)
                    .open(&self.path)
                    .and_then(|mut file| file.write_all(&line))
                    .map_err(|source| io(&self.path, source))?;
            }
            // Lines another process appended meanwhile are not in the copy: replacing the file
            // would lose them.
            if length()? != before {
                return Err(io(
                    &self.path,
                    std::io::Error::other(
                        "the ledger grew while it was repriced: a program is writing to it; reprice it while none does (the file is left as it was)",
                    ),
                ));
            }
            Ok(())
        });
        if let Err(error) = written {
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use cost_core::{CostBreakdown, Money, ServiceTier, Usage};

    use super::*;
    use crate::record::CallStatus;

    /// A priced call at `at_ms`, of `input` tokens.
    fn call(at_ms: i64, input: u64) -> CallRecord {
        CallRecord {
            id: None,
            at_ms,
            duration_us: 1_250,
            name: Cow::Borrowed("chat"),
            span_id: 7,
            parent_span_id: None,
            request_model: Some(Arc::from("gpt-4o")),
            response_model: None,
            model: Arc::from("gpt-4o"),
            status: CallStatus::Priced,
            price_table: Some(Arc::from("2025.11.24")),
            provider: Some(Arc::from("openai")),
            operation: None,
            service_tier: ServiceTier::Standard,
            data_residency: false,
            search_context_size: None,
            reported_cost: None,
            session: Some(Arc::from("s-1")),
            agent: None,
            user: None,
            org: None,
            feature: Some(Arc::from("chat")),
            usage: Usage::new(input, 100),
            cost: CostBreakdown {
                uncached_input: Money::from_decimal("0.0025").unwrap_or_else(|e| panic!("{e}")),
                ..CostBreakdown::default()
            },
            cache_hit_savings: Money::ZERO,
            previous_cost: None,
            repriced_with: None,
        }
    }

    /// The records of the store's file, without their ids.
    fn read_back(store: &mut JsonLinesStore) -> Vec<CallRecord> {
        let mut records = Vec::new();
        let read = store.scan(&TimeRange::default(), &mut |mut record| {
            record.id = None;
            records.push(record);
        });
        read.unwrap_or_else(|e| panic!("{e}"));
        records
    }

    #[test]
    fn a_batch_whose_write_fails_part_way_is_finished_before_the_next_and_written_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store =
            JsonLinesStore::open(dir.path().join("calls.jsonl")).unwrap_or_else(|e| panic!("{e}"));
        let batch: Vec<CallRecord> = (1..=3).map(|i| call(i, 1_000 + i as u64)).collect();
        // The disk fills in the second line, then room is made again.
        let first_line = line(&batch[0]).unwrap_or_else(|e| panic!("{e}")).len() + 1;
        store.room = Some(first_line + 40);
        // An interrupted write is tried again; the full disk fails the batch.
        store.interrupt_when_full = true;
        let full = store.append(&batch).err().map(|error| error.to_string());
        assert!(
            full.as_deref()
                .is_some_and(|error| error.contains("no storage space")),
            "{full:?}"
        );
        assert!(!store.interrupt_when_full);
        store.room = None;
        // Retried, with a call queued since.
        let mut retried = batch.clone();
        retried.push(call(4, 1_004));
        store.append(&retried).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_back(&mut store), retried);
    }

    #[test]
    fn a_batch_whose_write_fails_before_its_first_byte_is_written_whole_on_retry() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store =
            JsonLinesStore::open(dir.path().join("calls.jsonl")).unwrap_or_else(|e| panic!("{e}"));
        let batch: Vec<CallRecord> = (1..=2).map(|i| call(i, 1_000)).collect();
        store.room = Some(0);
        assert!(store.append(&batch).is_err());
        assert!(store.unfinished.is_none());
        store.room = None;
        store.append(&batch).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_back(&mut store), batch);
    }

    #[test]
    fn a_line_being_written_is_not_read_and_one_cut_short_is_ended_before_the_next() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("calls.jsonl");
        let mut store = JsonLinesStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let written = [call(1, 1_000), call(2, 2_000)];
        store.append(&written).unwrap_or_else(|e| panic!("{e}"));
        // Another process is writing a line: a reader sees its start only.
        let next = line(&call(3, 3_000)).unwrap_or_else(|e| panic!("{e}"));
        let (start, _) = next.split_at(next.len() / 2);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(start.as_bytes()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_back(&mut store), written);
        // A store opened only to read (a report) leaves the line being written alone.
        drop(store);
        let before = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut reader = JsonLinesStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_back(&mut reader), written);
        drop(reader);
        assert_eq!(std::fs::read(&path).ok(), Some(before));
        // That process was killed there. The next to append to the file ends the cut line
        // first: what it writes stays whole, and the cut line is reported as the third.
        let mut store = JsonLinesStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        store
            .append(&[call(4, 4_000)])
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = store.scan(&TimeRange::default(), &mut |_| {});
        let location = format!("{}:3", path.display());
        assert!(
            matches!(&refused, Err(StoreError::Corrupt { location: at, .. }) if *at == location),
            "{refused:?}"
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2], start);
        let fourth: CallRecord = serde_json::from_str(lines[3]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fourth, call(4, 4_000));
        // Opening a file that ends well adds nothing.
        drop(store);
        drop(JsonLinesStore::open(&path).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            std::fs::read_to_string(&path)
                .map(|again| again == text)
                .ok(),
            Some(true)
        );
    }

    #[test]
    fn a_reprice_refuses_to_replace_a_file_another_process_appended_to_meanwhile() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("calls.jsonl");
        let mut store = JsonLinesStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        store
            .append(&[call(1, 1_000)])
            .unwrap_or_else(|e| panic!("{e}"));
        let late = format!(
            "{}\n",
            line(&call(2, 2_000)).unwrap_or_else(|e| panic!("{e}"))
        );
        store.appended_while_repricing = Some(late.into_bytes());
        let repriced = Repriced {
            id: 1,
            status: CallStatus::Priced,
            cost: CostBreakdown::default(),
            model: "gpt-4o".to_owned(),
            price_table: "corrected".to_owned(),
        };
        let refused = store.reprice(&[repriced]).err().map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("grew while it was repriced")),
            "{refused:?}"
        );
        // Both calls are there, neither repriced, and no copy is left beside the file.
        assert_eq!(read_back(&mut store), [call(1, 1_000), call(2, 2_000)]);
        assert!(!path.with_extension("jsonl.reprice").exists());
    }

    #[test]
    fn a_batch_left_unfinished_is_finished_when_the_store_is_dropped() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("calls.jsonl");
        let mut store = JsonLinesStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let batch = [call(1, 1_000)];
        store.room = Some(10);
        assert!(store.append(&batch).is_err());
        store.room = None;
        drop(store);
        let mut store = JsonLinesStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_back(&mut store), batch);
    }
}
