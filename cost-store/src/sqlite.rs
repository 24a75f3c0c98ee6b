//! SQLite, the embedded default: one file, bundled SQLite, write-ahead log (readers do not block
//! the writer), a busy timeout so several processes can share the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, params_from_iter, types::ToSqlOutput};

use crate::columns::{self, COLUMNS, Value};
use crate::record::CallRecord;
use crate::store::{Repriced, Store, StoreError, TimeRange};

/// The schema versions, applied in order; `PRAGMA user_version` records the last applied.
const MIGRATIONS: &[&str] = &[
    // 1: the calls table.
    "CREATE TABLE llm_calls (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        duration_us INTEGER NOT NULL,
        name TEXT NOT NULL,
        span_id INTEGER NOT NULL,
        parent_span_id INTEGER,
        request_model TEXT,
        response_model TEXT,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        price_table TEXT,
        provider TEXT,
        operation TEXT,
        session TEXT,
        agent TEXT,
        user_key TEXT,
        org TEXT,
        feature TEXT,
        input_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        cache_write_1h_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        cost TEXT NOT NULL,
        cost_uncached_input TEXT NOT NULL,
        cost_cache_read TEXT NOT NULL,
        cost_cache_write TEXT NOT NULL,
        cost_cache_write_1h TEXT NOT NULL,
        cost_output TEXT NOT NULL,
        cost_reasoning TEXT NOT NULL,
        cache_savings TEXT NOT NULL,
        cache_hit_savings TEXT NOT NULL,
        previous_cost TEXT,
        repriced_with TEXT
    );
    CREATE INDEX llm_calls_at ON llm_calls (at_ms);",
    // 2: budget accounts shared by processes (money as exact decimal text).
    "CREATE TABLE llm_cost_budget_accounts (
        budget TEXT NOT NULL,
        key TEXT NOT NULL,
        window_id INTEGER NOT NULL,
        spent TEXT NOT NULL,
        reserved TEXT NOT NULL,
        PRIMARY KEY (budget, key, window_id)
    );",
    // 3: the service tier of each call (its price depends on it).
    "ALTER TABLE llm_calls ADD COLUMN service_tier TEXT NOT NULL DEFAULT 'standard';",
    // 4: audio and image tokens and their cost (calls stored before had none apart: zero).
    "ALTER TABLE llm_calls ADD COLUMN audio_input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE llm_calls ADD COLUMN audio_output_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE llm_calls ADD COLUMN cost_audio_input TEXT NOT NULL DEFAULT '0';
    ALTER TABLE llm_calls ADD COLUMN cost_audio_output TEXT NOT NULL DEFAULT '0';
    ALTER TABLE llm_calls ADD COLUMN cache_read_audio_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE llm_calls ADD COLUMN image_output_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE llm_calls ADD COLUMN cost_image_output TEXT NOT NULL DEFAULT '0';",
    // 5: web searches and their cost (calls stored before had none counted: zero).
    "ALTER TABLE llm_calls ADD COLUMN web_search_requests INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE llm_calls ADD COLUMN cost_web_search TEXT NOT NULL DEFAULT '0';",
    // 6: image prompt tokens (uncached and cached) and their cost (calls stored before counted
    // them as text: zero).
    "ALTER TABLE llm_calls ADD COLUMN image_input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE llm_calls ADD COLUMN cache_read_image_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE llm_calls ADD COLUMN cost_image_input TEXT NOT NULL DEFAULT '0';",
    // 7: file search tool calls and their cost (calls stored before had none counted: zero).
    "ALTER TABLE llm_calls ADD COLUMN file_search_calls INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE llm_calls ADD COLUMN cost_file_search TEXT NOT NULL DEFAULT '0';",
    // 8: whether each call ran on a data-residency endpoint (its price depends on it; calls
    // stored before did not say: no).
    "ALTER TABLE llm_calls ADD COLUMN data_residency INTEGER NOT NULL DEFAULT 0;",
    // 9: images of the image generation tool, code interpreter sessions and their costs (calls
    // stored before had none counted: zero).
    "ALTER TABLE llm_calls ADD COLUMN image_generation_calls INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE llm_calls ADD COLUMN cost_image_generation TEXT NOT NULL DEFAULT '0';
    ALTER TABLE llm_calls ADD COLUMN code_interpreter_sessions INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE llm_calls ADD COLUMN cost_code_interpreter TEXT NOT NULL DEFAULT '0';",
    // 10: the search context size of a call's web searches (calls stored before did not say).
    "ALTER TABLE llm_calls ADD COLUMN search_context_size TEXT;",
    // 11: the cost a call's provider reported, beside the table's (calls stored before did
    // not keep it).
    "ALTER TABLE llm_calls ADD COLUMN reported_cost TEXT;",
    // 12: the cost a provider reported, charged for a call the table had no price for
    // (calls stored before were never charged one: zero).
    "ALTER TABLE llm_calls ADD COLUMN cost_provider_reported TEXT NOT NULL DEFAULT '0';",
];

/// The schema version this library writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Turns SQLite errors into store errors naming `path`.
fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// A SQLite database of call records.
pub struct SqliteStore {
    path: PathBuf,
    connection: Connection,
    insert: String,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `path` and migrates its schema.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let error = sqlite_error(&path);
        let connection = Connection::open(&path).map_err(&error)?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(&error)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(&error)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(&error)?;
        let mut store = SqliteStore {
            insert: format!(
                "INSERT INTO llm_calls ({}) VALUES ({})",
                COLUMNS.join(", "),
                (1..=COLUMNS.len())
                    .map(|i| format!("?{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            path,
            connection,
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let error = sqlite_error(&self.path);
        let transaction = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&error)?;
        let found: i64 = transaction
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(&error)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                location: self.path.display().to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for migration in &MIGRATIONS[found as usize..] {
            transaction.execute_batch(migration).map_err(&error)?;
        }
        transaction
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .and_then(|()| transaction.commit())
            .map_err(&error)
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::{Value as Owned, ValueRef};
        Ok(match self {
            Value::Integer(Some(v)) => ToSqlOutput::Owned(Owned::Integer(*v)),
            Value::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Integer(None) | Value::Text(None) => ToSqlOutput::Owned(Owned::Null),
        })
    }
}

struct SqliteRow<'a, 'b>(&'a rusqlite::Row<'b>);

impl columns::Row for SqliteRow<'_, '_> {
    fn integer(&self, index: usize) -> Result<Option<i64>, String> {
        self.0.get(index).map_err(|e| e.to_string())
    }

    fn text(&self, index: usize) -> Result<Option<String>, String> {
        self.0.get(index).map_err(|e| e.to_string())
    }
}

impl Store for SqliteStore {
    fn append(&mut self, records: &[CallRecord]) -> Result<(), StoreError> {
        let location = self.path.display().to_string();
        let sqlite = sqlite_error(&self.path);
        // Dropped unfinished (a record refused), the transaction rolls back.
        let transaction = self.connection.transaction().map_err(&sqlite)?;
        {
            let mut insert = transaction.prepare_cached(&self.insert).map_err(&sqlite)?;
            for record in records {
                let row = columns::values(record, &location)?;
                insert.execute(params_from_iter(row)).map_err(&sqlite)?;
            }
        }
        transaction.commit().map_err(&sqlite)
    }

    fn scan(
        &mut self,
        range: &TimeRange,
        each: &mut dyn FnMut(CallRecord),
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT id, {} FROM llm_calls WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY id",
            COLUMNS.join(", ")
        );
        let location = self.path.display().to_string();
        let error = sqlite_error(&self.path);
        let mut statement = self.connection.prepare(&sql).map_err(&error)?;
        let mut rows = statement
            .query((
                range.since_ms.unwrap_or(i64::MIN),
                range.until_ms.unwrap_or(i64::MAX),
            ))
            .map_err(&error)?;
        let mut handed = 0;
        while let Some(row) = rows.next().map_err(&error)? {
            each(columns::record(&SqliteRow(row), &location)?);
            handed += 1;
        }
        Ok(handed)
    }

    fn reprice(&mut self, repriced: &[Repriced]) -> Result<(), StoreError> {
        let result = (|| {
            let transaction = self.connection.transaction()?;
            {
                let mut update = transaction.prepare_cached(
                    "UPDATE llm_calls SET
                        previous_cost = COALESCE(previous_cost, cost),
                        repriced_with = ?2, status = ?3, model = ?4, cost = ?5,
                        cost_uncached_input = ?6, cost_cache_read = ?7, cost_cache_write = ?8,
                        cost_cache_write_1h = ?9, cost_output = ?10, cost_reasoning = ?11,
                        cache_savings = ?12, cost_audio_input = ?13, cost_audio_output = ?14,
                        cost_image_output = ?15, cost_web_search = ?16, cost_image_input = ?17,
                        cost_file_search = ?18, cost_image_generation = ?19,
                        cost_code_interpreter = ?20, cost_provider_reported = ?21
                     WHERE id = ?1",
                )?;
                for r in repriced {
                    let c = &r.cost;
                    update.execute(rusqlite::params![
                        r.id,
                        r.price_table,
                        r.status.as_str(),
                        r.model,
                        c.total().to_string(),
                        c.uncached_input.to_string(),
                        c.cache_read.to_string(),
                        c.cache_write.to_string(),
                        c.cache_write_1h.to_string(),
                        c.output.to_string(),
                        c.reasoning.to_string(),
                        c.cache_savings.to_string(),
                        c.audio_input.to_string(),
                        c.audio_output.to_string(),
                        c.image_output.to_string(),
                        c.web_search.to_string(),
                        c.image_input.to_string(),
                        c.file_search.to_string(),
                        c.image_generation.to_string(),
                        c.code_interpreter.to_string(),
                        c.provider_reported.to_string(),
                    ])?;
                }
            }
            transaction.commit()
        })();
        result.map_err(sqlite_error(&self.path))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

impl SqliteStore {
    /// The account's figures inside `transaction` (zero when absent).
    fn figures(
        transaction: &rusqlite::Transaction<'_>,
        account: &cost_core::budget::SharedKey<'_>,
    ) -> rusqlite::Result<Option<(String, String)>> {
        use rusqlite::OptionalExtension;
        transaction
            .query_row(
                "SELECT spent, reserved FROM llm_cost_budget_accounts
                 WHERE budget = ?1 AND key = ?2 AND window_id = ?3",
                (account.budget, account.key, account.window),
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
    }

    fn write_figures(
        transaction: &rusqlite::Transaction<'_>,
        account: &cost_core::budget::SharedKey<'_>,
        spent: cost_core::Money,
        reserved: cost_core::Money,
    ) -> rusqlite::Result<usize> {
        transaction.execute(
            "INSERT INTO llm_cost_budget_accounts (budget, key, window_id, spent, reserved)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (budget, key, window_id) DO UPDATE SET spent = ?4, reserved = ?5",
            (
                account.budget,
                account.key,
                account.window,
                spent.to_string(),
                reserved.to_string(),
            ),
        )
    }

    fn parse_figures(
        path: &std::path::Path,
        account: &cost_core::budget::SharedKey<'_>,
        figures: Option<(String, String)>,
    ) -> Result<(cost_core::Money, cost_core::Money), StoreError> {
        let Some((spent, reserved)) = figures else {
            return Ok((cost_core::Money::ZERO, cost_core::Money::ZERO));
        };
        let store = path.display().to_string();
        let parse = |text: &str| crate::budgets::account_figure(text, &store, account);
        Ok((parse(&spent)?, parse(&reserved)?))
    }
}

impl crate::budgets::BudgetBackend for SqliteStore {
    fn try_reserve(
        &mut self,
        account: cost_core::budget::SharedKey<'_>,
        amount: cost_core::Money,
        limit: cost_core::Money,
        pending: cost_core::Money,
    ) -> Result<Result<(), (cost_core::Money, cost_core::Money)>, StoreError> {
        // An immediate transaction holds the database's write lock from the read to the
        // write: no other process can book in between.
        let path = self.path.clone();
        let error = sqlite_error(&path);
        let transaction = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&error)?;
        let figures = Self::figures(&transaction, &account).map_err(&error)?;
        let (spent, reserved) = Self::parse_figures(&path, &account, figures)?;
        if spent + reserved - pending + amount > limit {
            return Ok(Err((spent, reserved)));
        }
        Self::write_figures(&transaction, &account, spent, reserved + amount)
            .and_then(|_| transaction.commit())
            .map_err(&error)?;
        Ok(Ok(()))
    }

    fn settle(&mut self, settles: &[crate::budgets::Settle]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let error = sqlite_error(&path);
        let transaction = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&error)?;
        for settle in settles {
            let account = settle.key();
            let figures = Self::figures(&transaction, &account).map_err(&error)?;
            let (spent, reserved) = Self::parse_figures(&path, &account, figures)?;
            let reserved = (reserved - settle.reserved).max(cost_core::Money::ZERO);
            Self::write_figures(&transaction, &account, spent + settle.cost, reserved)
                .map_err(&error)?;
        }
        transaction.commit().map_err(error)
    }

    fn accounts(
        &mut self,
        budget: &str,
        window: i64,
    ) -> Result<Vec<crate::budgets::BudgetAccount>, StoreError> {
        let error = sqlite_error(&self.path);
        let mut statement = self
            .connection
            .prepare(
                "SELECT key, spent, reserved FROM llm_cost_budget_accounts
                 WHERE budget = ?1 AND window_id = ?2 ORDER BY key",
            )
            .map_err(&error)?;
        let rows = statement
            .query_map((budget, window), |row| {
                Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(&error)?;
        rows.into_iter()
            .map(|(key, spent, reserved)| {
                let account = cost_core::budget::SharedKey {
                    budget,
                    key: &key,
                    window,
                };
                let (spent, reserved) =
                    Self::parse_figures(&self.path, &account, Some((spent, reserved)))?;
                Ok(crate::budgets::BudgetAccount {
                    key,
                    spent,
                    reserved,
                })
            })
            .collect()
    }

    fn forget_before(&mut self, budget: &str, window: i64) -> Result<u64, StoreError> {
        self.connection
            .execute(
                "DELETE FROM llm_cost_budget_accounts WHERE budget = ?1 AND window_id < ?2",
                rusqlite::params![budget, window],
            )
            .map(|deleted| deleted as u64)
            .map_err(sqlite_error(&self.path))
    }
}
