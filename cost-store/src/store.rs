//! The store trait, the time range of a query, and opening a store by its address.

use crate::record::CallRecord;

/// Why a store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored record that cannot be read back (a corrupt line, a value out of range).
    #[error("{location}: {message}")]
    Corrupt {
        /// Where: a file and line, or a table and row id.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// SQLite.
    #[cfg(feature = "sqlite")]
    #[error("SQLite {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The cause.
        source: rusqlite::Error,
    },
    /// PostgreSQL (the address is shown without its password; the message with its causes,
    /// such as why a TLS handshake failed).
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL {address}: {}", with_causes(source))]
    Postgres {
        /// The server and database.
        address: String,
        /// The cause.
        source: postgres::Error,
    },
    /// Redis (the address is shown without its credentials).
    #[cfg(feature = "redis")]
    #[error("Redis {address}: {source}")]
    Redis {
        /// The server.
        address: String,
        /// The cause.
        source: redis::RedisError,
    },
    /// Other clients kept writing what a transaction read, so it never ran (Redis budget
    /// accounts: each try is refused when a watched account changes before it commits).
    #[error("{location}: other clients kept changing the accounts; gave up after {attempts} tries")]
    Contended {
        /// The store.
        location: String,
        /// The transactions refused in a row.
        attempts: u32,
    },
    /// A record holding a value the store cannot keep exactly (a count above 2⁶³ − 1 for a
    /// 64-bit integer column): refused, never rounded or clamped.
    #[error("{location}: cannot store the record: {message}")]
    Unstorable {
        /// The store.
        location: String,
        /// Which value.
        message: String,
    },
    /// The schema in the database is newer than this library knows.
    #[error("{location}: schema version {found} is newer than this library's {supported}")]
    SchemaTooNew {
        /// The database.
        location: String,
        /// The version found.
        found: i64,
        /// The newest version this library writes.
        supported: i64,
    },
    /// TLS to a store asked for in a way that cannot be honoured: certificate authorities given
    /// without TLS, a file of them that cannot be read or holds none, TLS in a build without it.
    #[error("{location}: TLS: {message}")]
    Tls {
        /// The store.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The store panicked while writing (a store of the program's own): the writer survives
    /// it, and the records of that write are written one by one, those it panics on abandoned.
    #[error("{location}: the store panicked: {message}")]
    Panicked {
        /// The store.
        location: String,
        /// The panic's message, when it has one.
        message: String,
    },
    /// A reading command's store that does not exist: a file missing, or a PostgreSQL
    /// database holding no ledger (see [`open_existing`]). Shown without credentials.
    #[error(
        "no ledger at `{0}`: it does not exist (a report or a reprice never creates one; check the path or URL)"
    )]
    NoLedger(String),
    /// An address no store of this build understands (shown without its credentials).
    #[error(
        "cannot open `{0}`: a ledger is a `.jsonl` file, a SQLite file or a postgres:// URL; budget accounts are a SQLite file, a postgres:// URL or a redis:// URL (each URL with the feature of its name)"
    )]
    UnknownAddress(String),
}

/// An error's message followed by those of its causes, `: `-separated (`error performing TLS
/// handshake: invalid peer certificate: UnknownIssuer`), each once.
#[cfg(feature = "postgres")]
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = next.source();
    }
    message
}

impl StoreError {
    /// Whether retrying cannot help: the store refused the data itself (a value it cannot hold,
    /// a broken constraint, a corrupt record), as opposed to being unreachable or busy.
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::Corrupt { .. }
            | StoreError::Panicked { .. }
            | StoreError::Unstorable { .. }
            | StoreError::SchemaTooNew { .. } => true,
            StoreError::Io { .. }
            | StoreError::Tls { .. }
            | StoreError::UnknownAddress(_)
            | StoreError::NoLedger(_)
            | StoreError::Contended { .. } => false,
            // Redis holds budget accounts only, whose settlements are retried until applied.
            #[cfg(feature = "redis")]
            StoreError::Redis { .. } => false,
            #[cfg(feature = "sqlite")]
            StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TooBig)
            ),
            #[cfg(feature = "postgres")]
            StoreError::Postgres { source, .. } => source.code().is_some_and(|state| {
                // Data exceptions (22), integrity violations (23), syntax or access rules (42).
                ["22", "23", "42"]
                    .iter()
                    .any(|class| state.code().starts_with(class))
            }),
        }
    }
}

/// A half-open range of call times, `since <= at < until`, in milliseconds since the Unix
/// epoch (UTC); `None` leaves a side open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// First millisecond included.
    pub since_ms: Option<i64>,
    /// First millisecond excluded.
    pub until_ms: Option<i64>,
}

impl TimeRange {
    /// Every call.
    pub const ALL: TimeRange = TimeRange {
        since_ms: None,
        until_ms: None,
    };

    /// Whether `at_ms` is inside.
    pub fn contains(&self, at_ms: i64) -> bool {
        self.since_ms.is_none_or(|s| at_ms >= s) && self.until_ms.is_none_or(|u| at_ms < u)
    }
}

/// A recomputed cost for a stored record (see [`Store::reprice`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repriced {
    /// The record's id.
    pub id: i64,
    /// Its new status (a call unpriced before may have a price now, and the other way round).
    pub status: crate::CallStatus,
    /// Its new cost.
    pub cost: cost_core::CostBreakdown,
    /// Its model as resolved by the new table.
    pub model: String,
    /// The version of the table that repriced it.
    pub price_table: String,
}

/// Where call records are kept. Every store creates and migrates its own schema when opened,
/// keeps money exactly (decimal text or `NUMERIC`, never a float), and returns records in the
/// order they were appended.
pub trait Store: Send + 'static {
    /// Appends records, all or none.
    fn append(&mut self, records: &[CallRecord]) -> Result<(), StoreError>;

    /// Hands each record of calls in `range` to `each`, with its id, in order, one at a time:
    /// a report over millions of calls holds one record at once, not all of them. Returns how
    /// many it handed.
    fn scan(
        &mut self,
        range: &TimeRange,
        each: &mut dyn FnMut(CallRecord),
    ) -> Result<u64, StoreError>;

    /// The records of calls in `range`, with their ids ([`Store::scan`] collected).
    fn load(&mut self, range: &TimeRange) -> Result<Vec<CallRecord>, StoreError> {
        let mut records = Vec::new();
        self.scan(range, &mut |record| records.push(record))?;
        Ok(records)
    }

    /// Replaces the cost of records, keeping each one's total before the first reprice in
    /// `previous_cost` (for audit), all or none.
    fn reprice(&mut self, repriced: &[Repriced]) -> Result<(), StoreError>;

    /// A short description for messages (the file, or the server and database).
    fn describe(&self) -> String;
}

/// Opens the store at `address`: a `postgres://` or `postgresql://` URL, a `.jsonl` file, or
/// else a SQLite database file (created when missing).
pub fn open(address: &str) -> Result<Box<dyn Store>, StoreError> {
    open_creating(address, Creating::IfMissing)
}

/// [`open`] for reading what is there (a report, a reprice): a file that does not exist, or a
/// PostgreSQL database that holds no ledger, is [`StoreError::NoLedger`] and is left as it
/// was, so a misspelt path gives an error, not the empty totals of a ledger made for it.
pub fn open_existing(address: &str) -> Result<Box<dyn Store>, StoreError> {
    open_creating(address, Creating::Never)
}

/// Whether opening a store may create it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Creating {
    /// A file or a schema missing is created.
    IfMissing,
    /// A file or a schema missing is [`StoreError::NoLedger`].
    Never,
}

/// With [`Creating::Never`], [`StoreError::NoLedger`] when `path` (a file store's) does not
/// exist.
pub(crate) fn file_must_exist(path: &str, creating: Creating) -> Result<(), StoreError> {
    if creating == Creating::Never && !std::path::Path::new(path).exists() {
        return Err(StoreError::NoLedger(path.to_owned()));
    }
    Ok(())
}

fn open_creating(address: &str, creating: Creating) -> Result<Box<dyn Store>, StoreError> {
    if is_redis_url(address) {
        // Redis keeps budget accounts only; never a SQLite file named after the URL.
        return Err(StoreError::UnknownAddress(address_without_secrets(address)));
    }
    if is_postgres_url(address) {
        #[cfg(feature = "postgres")]
        return Ok(Box::new(crate::postgres::PostgresStore::connect_creating(
            address, creating,
        )?));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::UnknownAddress(address_without_secrets(address)));
    }
    file_must_exist(address, creating)?;
    if address.ends_with(".jsonl") {
        return Ok(Box::new(crate::jsonl::JsonLinesStore::open(address)?));
    }
    #[cfg(feature = "sqlite")]
    return Ok(Box::new(crate::sqlite::SqliteStore::open(address)?));
    #[cfg(not(feature = "sqlite"))]
    Err(StoreError::UnknownAddress(address_without_secrets(address)))
}

/// An address as messages show it: a URL's scheme, host, port and path, without its user and
/// password, its query (where a PostgreSQL URL may carry `password=` and a Redis socket's
/// `pass=`) or fragment; anything else (a file) as it is.
pub(crate) fn address_without_secrets(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else {
        return address.to_owned();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    // The last `@`: a password with an `@` left unescaped is still cut off whole.
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{host}")
}

/// `true` for the addresses of a PostgreSQL server (`postgres://`, `postgresql://`).
pub(crate) fn is_postgres_url(address: &str) -> bool {
    address.starts_with("postgres://") || address.starts_with("postgresql://")
}

/// `true` for the addresses of a Redis server (`redis://`, `redis+unix://`, and `rediss://`:
/// over TLS, refused by a build without the feature `redis-tls`).
pub(crate) fn is_redis_url(address: &str) -> bool {
    ["redis://", "rediss://", "redis+unix://"]
        .iter()
        .any(|scheme| address.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use super::address_without_secrets;

    #[test]
    fn an_address_is_shown_without_user_password_or_query() {
        for (address, shown) in [
            (
                "postgres://app:hunter2@db.internal:5432/llm?sslmode=require&password=hunter3",
                "postgres://db.internal:5432/llm",
            ),
            // A password with an unescaped `@` goes whole.
            ("postgresql://app:hun@ter2@db/llm", "postgresql://db/llm"),
            ("redis://:hunter2@cache:6379/0", "redis://cache:6379/0"),
            ("rediss://cache:6380/#hunter2", "rediss://cache:6380/"),
            (
                "redis+unix:///run/redis.sock?db=1&pass=hunter2",
                "redis+unix:///run/redis.sock",
            ),
            ("postgres://db/llm", "postgres://db/llm"),
            // A file is a file, `@` and `?` included.
            ("/home/me@corp/calls?.sqlite", "/home/me@corp/calls?.sqlite"),
        ] {
            assert_eq!(address_without_secrets(address), shown, "{address}");
        }
    }
}
