//! PostgreSQL, for many processes on many machines: one `llm_calls` table, money as `NUMERIC`
//! (exact, summable in SQL), the schema versioned in `llm_cost_schema` and migrated under an
//! advisory lock so processes starting together do not race.
//!
//! TLS (feature `postgres-tls`) is asked for in the URL as libpq asks for it: `sslmode=require`,
//! `verify-ca` or `verify-full`, all three checking the server's certificate and host name
//! (never a TLS connection to whichever server answers), against the certificate authorities of
//! the PEM file `sslrootcert=PATH` when given, else the system's (also `sslrootcert=system`).
//! A server that asks clients for a certificate (mutual TLS, `clientcert=verify-full` in its
//! `pg_hba.conf`) gets the one of the PEM files `sslcert=PATH` and `sslkey=PATH`, read before
//! connecting (given together; libpq's default files under `~/.postgresql` are not read).
//! Without `sslmode` (or with `disable` or `prefer`) the connection is in the clear, as before;
//! `sslrootcert` or `sslcert` with one of those is refused, since TLS was meant.
//!
//! A connection not accepted within 5 s, or whose data stays unacknowledged for 10 s (Linux),
//! fails, unless the URL sets `connect_timeout` or `tcp_user_timeout` (seconds) itself; a
//! lock another transaction holds is waited for at most 5 s (`lock_timeout`), unless the
//! server, the role or the URL's `options` set one.

use std::borrow::Cow;

use postgres::{Client, NoTls};

use crate::budgets::TlsFiles;
use crate::columns::{self, COLUMNS, Value};
use crate::record::CallRecord;
use crate::store::{Creating, Repriced, Store, StoreError, TimeRange, address_without_secrets};
use crate::unconfirmed::{Unconfirmed, without};

/// The schema versions, applied in order.
const MIGRATIONS: &[&str] = &[
    // 1: the calls table.
    "CREATE TABLE llm_calls (
        id BIGSERIAL PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        duration_us BIGINT NOT NULL,
        name TEXT NOT NULL,
        span_id BIGINT NOT NULL,
        parent_span_id BIGINT,
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
        input_tokens BIGINT NOT NULL,
        cache_read_tokens BIGINT NOT NULL,
        cache_write_tokens BIGINT NOT NULL,
        cache_write_1h_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        reasoning_tokens BIGINT NOT NULL,
        cost NUMERIC NOT NULL,
        cost_uncached_input NUMERIC NOT NULL,
        cost_cache_read NUMERIC NOT NULL,
        cost_cache_write NUMERIC NOT NULL,
        cost_cache_write_1h NUMERIC NOT NULL,
        cost_output NUMERIC NOT NULL,
        cost_reasoning NUMERIC NOT NULL,
        cache_savings NUMERIC NOT NULL,
        cache_hit_savings NUMERIC NOT NULL,
        previous_cost NUMERIC,
        repriced_with TEXT
    );
    CREATE INDEX llm_calls_at ON llm_calls (at_ms);",
    // 2: budget accounts shared by processes.
    "CREATE TABLE llm_cost_budget_accounts (
        budget TEXT NOT NULL,
        key TEXT NOT NULL,
        window_id BIGINT NOT NULL,
        spent NUMERIC NOT NULL DEFAULT 0,
        reserved NUMERIC NOT NULL DEFAULT 0,
        PRIMARY KEY (budget, key, window_id)
    );",
    // 3: the service tier of each call (its price depends on it).
    "ALTER TABLE llm_calls ADD COLUMN service_tier TEXT NOT NULL DEFAULT 'standard';",
    // 4: audio and image tokens and their cost (calls stored before had none apart: zero).
    "ALTER TABLE llm_calls
        ADD COLUMN audio_input_tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN audio_output_tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cost_audio_input NUMERIC NOT NULL DEFAULT 0,
        ADD COLUMN cost_audio_output NUMERIC NOT NULL DEFAULT 0,
        ADD COLUMN cache_read_audio_tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN image_output_tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cost_image_output NUMERIC NOT NULL DEFAULT 0;",
    // 5: web searches and their cost (calls stored before had none counted: zero).
    "ALTER TABLE llm_calls
        ADD COLUMN web_search_requests BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cost_web_search NUMERIC NOT NULL DEFAULT 0;",
    // 6: image prompt tokens (uncached and cached) and their cost (calls stored before counted
    // them as text: zero).
    "ALTER TABLE llm_calls
        ADD COLUMN image_input_tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cache_read_image_tokens BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cost_image_input NUMERIC NOT NULL DEFAULT 0;",
    // 7: file search tool calls and their cost (calls stored before had none counted: zero).
    "ALTER TABLE llm_calls
        ADD COLUMN file_search_calls BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cost_file_search NUMERIC NOT NULL DEFAULT 0;",
    // 8: whether each call ran on a data-residency endpoint (its price depends on it; calls
    // stored before did not say: no).
    "ALTER TABLE llm_calls ADD COLUMN data_residency BIGINT NOT NULL DEFAULT 0;",
    // 9: images of the image generation tool, code interpreter sessions and their costs (calls
    // stored before had none counted: zero).
    "ALTER TABLE llm_calls
        ADD COLUMN image_generation_calls BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cost_image_generation NUMERIC NOT NULL DEFAULT 0,
        ADD COLUMN code_interpreter_sessions BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN cost_code_interpreter NUMERIC NOT NULL DEFAULT 0;",
    // 10: the search context size of a call's web searches (calls stored before did not say).
    "ALTER TABLE llm_calls ADD COLUMN search_context_size TEXT;",
    // 11: the cost a call's provider reported, beside the table's (calls stored before did
    // not keep it).
    "ALTER TABLE llm_calls ADD COLUMN reported_cost NUMERIC;",
    // 12: the cost a provider reported, charged for a call the table had no price for
    // (calls stored before were never charged one: zero).
    "ALTER TABLE llm_calls ADD COLUMN cost_provider_reported NUMERIC NOT NULL DEFAULT 0;",
];

/// The schema version this library writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a connection may take to be accepted when the URL does not say
/// (`connect_timeout`): a server that cannot be reached fails the write or the reservation
/// after it, instead of after the system's retries (some two minutes).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long what was sent may stay unacknowledged before the connection is dropped, when the
/// URL does not say (`tcp_user_timeout`, Linux): a connection cut silently fails after it
/// instead of after the system's retransmissions (some fifteen minutes).
const UNACKNOWLEDGED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Sets the timeouts `config` leaves unset (a `0` in the URL leaves it unset) to ours.
fn with_default_timeouts(config: &mut postgres::Config) {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(UNACKNOWLEDGED_TIMEOUT);
    }
}

/// How long a statement waits for a lock another transaction holds (a budget account another
/// program keeps locked) when neither the server, the role nor the URL's `options` set
/// `lock_timeout`: a reservation then fails as unavailable instead of waiting as long as that
/// transaction lasts (its caller waiting as long, up to the reservation timeout).
const LOCK_TIMEOUT: &str = "5s";

/// Sets the connection's `lock_timeout` to [`LOCK_TIMEOUT`] unless one is set already.
fn bound_lock_waits(client: &mut Client) -> Result<(), postgres::Error> {
    let configured: String = client.query_one("SHOW lock_timeout", &[])?.try_get(0)?;
    if configured == "0" {
        client.batch_execute(&format!("SET lock_timeout = '{LOCK_TIMEOUT}'"))?;
    }
    Ok(())
}

/// An arbitrary, fixed key for the migration lock.
const MIGRATION_LOCK: i64 = 0x6c6c_6d5f_636f_7374; // "llm_cost"

/// A PostgreSQL database of call records. It reconnects by itself after the connection is
/// lost: the next operation after a failure opens a new one. A batch of calls whose `COMMIT`
/// was sent but not answered is not written twice: the next write asks the server whether that
/// transaction committed (`txid_status`, PostgreSQL 10 or newer) and leaves out the calls that
/// landed; a batch of budget settlements likewise is never applied twice.
pub struct PostgresStore {
    /// The address for messages: the URL without its secrets.
    address: String,
    /// What the client connects with: the URL without `sslrootcert`, `sslmode` as it
    /// understands it, and the timeouts the URL leaves unset at ours.
    config: postgres::Config,
    connector: Connector,
    client: Option<Client>,
    /// Whether connecting may give the database the ledger's tables.
    creating: Creating,
    /// The last batch of calls whose `COMMIT` was sent but not answered (the connection was
    /// lost). Whether it landed is asked before the next batch is written, so a retried batch
    /// is never written twice.
    unconfirmed_calls: Option<Unconfirmed<CallRecord, i64>>,
    /// The same for a batch of budget settlements, never applied twice.
    unconfirmed_settles: Option<Unconfirmed<crate::budgets::Settle, i64>>,
}

/// How connections are made: in the clear, or over TLS.
#[derive(Clone)]
enum Connector {
    Plain,
    #[cfg(feature = "postgres-tls")]
    Tls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:5432/database`, with `?sslmode=require` for
    /// TLS: see the module's documentation) and migrates the schema.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_creating(url, Creating::IfMissing)
    }

    /// [`PostgresStore::connect`] to a database that holds a ledger already: one that holds
    /// none is [`StoreError::NoLedger`], and is given no tables.
    pub fn connect_existing(url: &str) -> Result<Self, StoreError> {
        Self::connect_creating(url, Creating::Never)
    }

    pub(crate) fn connect_creating(url: &str, creating: Creating) -> Result<Self, StoreError> {
        let address = address_without_secrets(url);
        let tls_error = |message: String| StoreError::Tls {
            location: address.clone(),
            message,
        };
        let TlsRequest { client_url, tls } = TlsRequest::read(url).map_err(tls_error)?;
        let connector = match tls {
            None => Connector::Plain,
            #[cfg(feature = "postgres-tls")]
            Some(files) => Connector::Tls(tls::connector(&files).map_err(tls_error)?),
            #[cfg(not(feature = "postgres-tls"))]
            Some(_) => {
                return Err(tls_error(
                    "this build has no TLS to PostgreSQL (feature `postgres-tls`)".to_owned(),
                ));
            }
        };
        let mut config: postgres::Config =
            client_url.parse().map_err(|source| StoreError::Postgres {
                address: address.clone(),
                source,
            })?;
        with_default_timeouts(&mut config);
        let mut store = PostgresStore {
            address,
            config,
            connector,
            client: None,
            creating,
            unconfirmed_calls: None,
            unconfirmed_settles: None,
        };
        store.client()?;
        Ok(store)
    }

    fn error(&self, source: postgres::Error) -> StoreError {
        StoreError::Postgres {
            address: self.address.clone(),
            source,
        }
    }

    /// The connection, opened (and the schema migrated) when there is none or it broke.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let connected = match &self.connector {
                Connector::Plain => self.config.connect(NoTls),
                #[cfg(feature = "postgres-tls")]
                Connector::Tls(tls) => self.config.connect(tls.clone()),
            };
            let mut client = connected.map_err(|e| self.error(e))?;
            if self.creating == Creating::Never
                && !holds_a_ledger(&mut client).map_err(|e| self.error(e))?
            {
                return Err(StoreError::NoLedger(self.address.clone()));
            }
            migrate(&mut client).map_err(|e| match e {
                Migration::Database(e) => self.error(e),
                Migration::TooNew(found) => StoreError::SchemaTooNew {
                    location: self.address.clone(),
                    found,
                    supported: SCHEMA_VERSION,
                },
            })?;
            bound_lock_waits(&mut client).map_err(|e| self.error(e))?;
            self.client = Some(client);
        }
        match self.client.as_mut() {
            Some(client) => Ok(client),
            None => Err(StoreError::UnknownAddress(self.address.clone())),
        }
    }

    /// Runs `f` on the connection; a failure drops the connection so the next call reconnects.
    fn with_client<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let result = f(self.client()?);
        result.map_err(|e| {
            self.client = None;
            self.error(e)
        })
    }
}

/// Whether the database has the ledger's schema table.
fn holds_a_ledger(client: &mut Client) -> Result<bool, postgres::Error> {
    client
        .query_one("SELECT to_regclass('llm_cost_schema') IS NOT NULL", &[])?
        .try_get(0)
}

enum Migration {
    Database(postgres::Error),
    TooNew(i64),
}

fn migrate(client: &mut Client) -> Result<(), Migration> {
    let mut transaction = client.transaction().map_err(Migration::Database)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(Migration::Database)?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS llm_cost_schema (version BIGINT NOT NULL)")
        .map_err(Migration::Database)?;
    let found: i64 = transaction
        .query_one("SELECT COALESCE(MAX(version), 0) FROM llm_cost_schema", &[])
        .and_then(|row| row.try_get(0))
        .map_err(Migration::Database)?;
    if found > SCHEMA_VERSION {
        return Err(Migration::TooNew(found));
    }
    for migration in &MIGRATIONS[found as usize..] {
        transaction
            .batch_execute(migration)
            .map_err(Migration::Database)?;
    }
    transaction
        .execute("DELETE FROM llm_cost_schema", &[])
        .and_then(|_| {
            transaction.execute(
                "INSERT INTO llm_cost_schema (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
        })
        .map_err(Migration::Database)?;
    transaction.commit().map_err(Migration::Database)
}

/// Appends one row of `COPY … FROM STDIN` text format: tab-separated, `\N` for null,
/// backslash escapes for the characters the format reserves.
fn copy_row(out: &mut String, values: &[Value<'_>]) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match value {
            Value::Integer(Some(n)) => out.push_str(&n.to_string()),
            Value::Text(Some(text)) => {
                for c in text.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        // PostgreSQL text cannot hold NUL.
                        '\0' => out.push('\u{FFFD}'),
                        c => out.push(c),
                    }
                }
            }
            Value::Integer(None) | Value::Text(None) => out.push_str("\\N"),
        }
    }
    out.push('\n');
}

/// What a URL asks of TLS, and the URL the client reads.
struct TlsRequest {
    /// The URL without `sslrootcert`, `sslcert` and `sslkey`, its `verify-ca` or `verify-full`
    /// read as `require`.
    client_url: String,
    /// `Some` when TLS is required, with the files it reads (`sslrootcert`; `sslcert` and
    /// `sslkey`).
    tls: Option<TlsFiles>,
}

impl TlsRequest {
    fn read(url: &str) -> Result<TlsRequest, String> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok(TlsRequest {
                client_url: url.to_owned(),
                tls: None,
            });
        };
        let (mut required, mut roots, mut kept) = (false, None, Vec::new());
        let (mut certificate, mut key) = (None, None);
        let mut system_roots = false;
        let path = |text: &str| {
            let decoded = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
            std::path::PathBuf::from(decoded.as_ref())
        };
        for parameter in query.split('&') {
            match parameter.split_once('=') {
                // libpq's `system`: the system's authorities, as without the parameter.
                Some(("sslrootcert", "system")) => system_roots = true,
                Some(("sslrootcert", file)) => roots = Some(path(file)),
                Some(("sslcert", file)) => certificate = Some(path(file)),
                Some(("sslkey", file)) => key = Some(path(file)),
                Some(("sslmode", "require" | "verify-ca" | "verify-full")) => {
                    required = true;
                    kept.push("sslmode=require");
                }
                _ => kept.push(parameter),
            }
        }
        if (roots.is_some() || system_roots) && !required {
            return Err("`sslrootcert` is given but `sslmode` does not require TLS (use sslmode=verify-full): the connection would be in the clear".to_owned());
        }
        let identity = match (certificate, key) {
            (Some(certificate), Some(key)) => {
                Some(crate::budgets::TlsClientIdentity { certificate, key })
            }
            (None, None) => None,
            _ => {
                return Err(
                    "`sslcert` and `sslkey` go together: the client certificate and its key"
                        .to_owned(),
                );
            }
        };
        if identity.is_some() && !required {
            return Err("`sslcert` is given but `sslmode` does not require TLS (use sslmode=verify-full): the connection would be in the clear".to_owned());
        }
        let client_url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(TlsRequest {
            client_url,
            tls: required.then_some(TlsFiles { roots, identity }),
        })
    }
}

#[cfg(feature = "postgres-tls")]
mod tls {
    use std::path::Path;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use crate::budgets::TlsFiles;

    /// A TLS connector checking the server's certificate and host name against the certificate
    /// authorities of `files.roots`, else the system's, presenting `files.identity` to a server
    /// that asks for a client certificate; with ring's crypto whatever provider the process has
    /// installed.
    pub(super) fn connector(
        files: &TlsFiles,
    ) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
            client_config(files)?,
        ))
    }

    /// The certificates of the PEM file at `path`: an error naming it (and `what` it holds)
    /// when it cannot be read.
    fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
        CertificateDer::pem_file_iter(path)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read {what} in {}: {e}", path.display()))
    }

    /// The TLS configuration of [`connector`].
    pub(super) fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, String> {
        let mut store = rustls::RootCertStore::empty();
        match files.roots.as_deref() {
            Some(path) => {
                let certificates = certificates(path, "the certificate authorities")?;
                let (added, _) = store.add_parsable_certificates(certificates);
                if added == 0 {
                    return Err(format!("no certificate authority in {}", path.display()));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                store.add_parsable_certificates(found.certs);
                if store.is_empty() {
                    return Err(format!(
                        "no certificate authority found in the system's store ({})",
                        found
                            .errors
                            .first()
                            .map_or_else(|| "empty".to_owned(), ToString::to_string)
                    ));
                }
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store);
        match &files.identity {
            None => Ok(config.with_no_client_auth()),
            Some(identity) => {
                let chain = certificates(&identity.certificate, "the client certificate")?;
                if chain.is_empty() {
                    return Err(format!(
                        "no certificate in {}",
                        identity.certificate.display()
                    ));
                }
                let key = PrivateKeyDer::from_pem_file(&identity.key).map_err(|e| {
                    format!(
                        "cannot read the client key in {}: {e}",
                        identity.key.display()
                    )
                })?;
                config.with_client_auth_cert(chain, key).map_err(|e| {
                    format!(
                        "the client certificate {} and key {} do not go together: {e}",
                        identity.certificate.display(),
                        identity.key.display()
                    )
                })
            }
        }
    }
}

struct PostgresRow<'a>(&'a postgres::Row);

impl columns::Row for PostgresRow<'_> {
    fn integer(&self, index: usize) -> Result<Option<i64>, String> {
        self.0.try_get(index).map_err(|e| e.to_string())
    }

    fn text(&self, index: usize) -> Result<Option<String>, String> {
        self.0.try_get(index).map_err(|e| e.to_string())
    }
}

impl PostgresStore {
    /// Whether transaction `transaction` committed: `false` when it was aborted, or is too old
    /// for the server to tell (after some billions of transactions). Fails (a passing failure)
    /// while the server cannot be asked or is still committing it.
    fn committed(&mut self, transaction: i64) -> Result<bool, StoreError> {
        let status: Option<String> = self.with_client(|client| {
            client
                .query_typed_one(
                    "SELECT txid_status($1)",
                    &[(&transaction, postgres::types::Type::INT8)],
                )?
                .try_get(0)
        })?;
        match status.as_deref() {
            Some("committed") => Ok(true),
            Some("in progress") => Err(StoreError::Io {
                path: self.address.clone(),
                source: std::io::Error::other(
                    "the commit of the previous batch, whose answer was lost, is still in progress",
                ),
            }),
            _ => Ok(false),
        }
    }

    /// `items` without those of the unconfirmed batch in `slot` when its transaction turns out
    /// to have committed (a retry brings them again); `items` whole when it did not, or when no
    /// batch is unconfirmed.
    fn not_yet_applied<'a, T: PartialEq + Clone>(
        &mut self,
        slot: fn(&mut Self) -> &mut Option<Unconfirmed<T, i64>>,
        items: &'a [T],
    ) -> Result<Cow<'a, [T]>, StoreError> {
        let Some(transaction) = slot(self).as_ref().map(|batch| batch.mark) else {
            return Ok(Cow::Borrowed(items));
        };
        let committed = match self.committed(transaction) {
            // A server that cannot be asked (before PostgreSQL 10, no `txid_status`): written
            // again, as if it had not committed, rather than stopping every later batch.
            Err(error) if error.is_permanent() => false,
            committed => committed?,
        };
        match slot(self).take() {
            Some(batch) if committed => Ok(Cow::Owned(without(items, &batch.items))),
            _ => Ok(Cow::Borrowed(items)),
        }
    }

    /// Runs `work` in one transaction whose id is read first; when its `COMMIT` is sent and
    /// its answer lost, `items` are kept in `slot` as unconfirmed, for the next batch to ask.
    fn apply_once<T: Clone, R>(
        &mut self,
        slot: fn(&mut Self) -> &mut Option<Unconfirmed<T, i64>>,
        items: &[T],
        work: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<R, postgres::Error>,
    ) -> Result<R, StoreError> {
        let mut committing = None;
        let applied = self.with_client(|client| {
            let mut transaction = client.transaction()?;
            let id: i64 = transaction
                .query_typed_one("SELECT txid_current()", &[])?
                .try_get(0)?;
            let done = work(&mut transaction)?;
            committing = Some(id);
            transaction.commit().map(|()| done)
        });
        if let (Err(_), Some(transaction)) = (&applied, committing) {
            *slot(self) = Some(Unconfirmed {
                mark: transaction,
                items: items.to_vec(),
            });
        }
        applied
    }
}

impl Store for PostgresStore {
    fn append(&mut self, records: &[CallRecord]) -> Result<(), StoreError> {
        let records = self.not_yet_applied(|store| &mut store.unconfirmed_calls, records)?;
        if records.is_empty() {
            return Ok(());
        }
        // COPY in text format: one round trip per batch, and the server parses each value
        // (money into NUMERIC) without a statement to plan.
        let mut text = String::with_capacity(records.len() * 400);
        let location = self.address.clone();
        for record in records.iter() {
            copy_row(&mut text, &columns::values(record, &location)?);
        }
        let copy = format!("COPY llm_calls ({}) FROM STDIN", COLUMNS.join(", "));
        let written = self.apply_once(
            |store| &mut store.unconfirmed_calls,
            &records,
            |transaction| {
                let mut writer = transaction.copy_in(&copy)?;
                if let Err(e) = std::io::Write::write_all(&mut writer, text.as_bytes()) {
                    // Dropping the writer unfinished aborts the copy; the transaction rolls
                    // back.
                    return Ok(Err(e));
                }
                writer.finish()?;
                Ok(Ok(()))
            },
        )?;
        written.map_err(|source| {
            self.client = None;
            StoreError::Io {
                path: self.address.clone(),
                source,
            }
        })
    }

    fn scan(
        &mut self,
        range: &TimeRange,
        each: &mut dyn FnMut(CallRecord),
    ) -> Result<u64, StoreError> {
        // Money comes back as its exact decimal text.
        let selected: Vec<String> = COLUMNS
            .iter()
            .map(|c| {
                if columns::is_money(c) {
                    format!("{c}::text")
                } else {
                    (*c).to_owned()
                }
            })
            .collect();
        let sql = format!(
            "SELECT id, {} FROM llm_calls WHERE at_ms >= $1 AND at_ms < $2 ORDER BY id",
            selected.join(", ")
        );
        let (since, until) = (
            range.since_ms.unwrap_or(i64::MIN),
            range.until_ms.unwrap_or(i64::MAX),
        );
        let location = self.address.clone();
        // Rows are read as the server sends them, a record at a time; a row that does not read
        // stops the scan with its error.
        let mut unreadable = None;
        let handed = self.with_client(|client| {
            use postgres::fallible_iterator::FallibleIterator;
            let mut rows =
                client.query_raw(&sql, [&since as &dyn postgres::types::ToSql, &until])?;
            let mut handed = 0;
            while let Some(row) = rows.next()? {
                match columns::record(&PostgresRow(&row), &location) {
                    Ok(record) => {
                        each(record);
                        handed += 1;
                    }
                    Err(error) => {
                        unreadable = Some(error);
                        break;
                    }
                }
            }
            Ok(handed)
        })?;
        match unreadable {
            Some(error) => Err(error),
            None => Ok(handed),
        }
    }

    fn reprice(&mut self, repriced: &[Repriced]) -> Result<(), StoreError> {
        self.with_client(|client| {
            let mut transaction = client.transaction()?;
            let update = transaction.prepare(
                "UPDATE llm_calls SET
                    previous_cost = COALESCE(previous_cost, cost),
                    repriced_with = $2::text, status = $3::text, model = $4::text,
                    cost = $5::text::numeric,
                    cost_uncached_input = $6::text::numeric, cost_cache_read = $7::text::numeric,
                    cost_cache_write = $8::text::numeric, cost_cache_write_1h = $9::text::numeric,
                    cost_output = $10::text::numeric, cost_reasoning = $11::text::numeric,
                    cache_savings = $12::text::numeric,
                    cost_audio_input = $13::text::numeric, cost_audio_output = $14::text::numeric,
                    cost_image_output = $15::text::numeric,
                    cost_web_search = $16::text::numeric,
                    cost_image_input = $17::text::numeric,
                    cost_file_search = $18::text::numeric,
                    cost_image_generation = $19::text::numeric,
                    cost_code_interpreter = $20::text::numeric,
                    cost_provider_reported = $21::text::numeric
                 WHERE id = $1",
            )?;
            for r in repriced {
                let c = &r.cost;
                let money = [
                    c.total(),
                    c.uncached_input,
                    c.cache_read,
                    c.cache_write,
                    c.cache_write_1h,
                    c.output,
                    c.reasoning,
                    c.cache_savings,
                    c.audio_input,
                    c.audio_output,
                    c.image_output,
                    c.web_search,
                    c.image_input,
                    c.file_search,
                    c.image_generation,
                    c.code_interpreter,
                    c.provider_reported,
                ]
                .map(|m| m.to_string());
                transaction.execute(
                    &update,
                    &[
                        &r.id,
                        &r.price_table,
                        &r.status.as_str(),
                        &r.model,
                        &money[0],
                        &money[1],
                        &money[2],
                        &money[3],
                        &money[4],
                        &money[5],
                        &money[6],
                        &money[7],
                        &money[8],
                        &money[9],
                        &money[10],
                        &money[11],
                        &money[12],
                        &money[13],
                        &money[14],
                        &money[15],
                        &money[16],
                    ],
                )?;
            }
            transaction.commit()
        })
    }

    fn describe(&self) -> String {
        self.address.clone()
    }
}

impl crate::budgets::BudgetBackend for PostgresStore {
    fn try_reserve(
        &mut self,
        account: cost_core::budget::SharedKey<'_>,
        amount: cost_core::Money,
        limit: cost_core::Money,
        pending: cost_core::Money,
    ) -> Result<Result<(), (cost_core::Money, cost_core::Money)>, StoreError> {
        let (amount, limit, pending) = (amount.to_string(), limit.to_string(), pending.to_string());
        let location = self.address.clone();
        let figures = self.with_client(|client| {
            use postgres::types::{ToSql, Type};
            fn text(value: &(dyn ToSql + Sync)) -> (&(dyn ToSql + Sync), Type) {
                (value, Type::TEXT)
            }
            // One statement, one round trip (typed parameters need no prepare): the account
            // made where missing, or booked on under its row's lock, only if the amount fits
            // (an account's figures are never below zero, so one that fits when made fits
            // there too, and one that does not fit a new account fits no account).
            let booked = client.query_typed(
                "INSERT INTO llm_cost_budget_accounts AS a (budget, key, window_id, spent, reserved)
                 SELECT $1, $2, $3, 0, $4::numeric
                 WHERE $4::numeric - $6::numeric <= $5::numeric
                 ON CONFLICT (budget, key, window_id) DO UPDATE
                    SET reserved = a.reserved + EXCLUDED.reserved
                    WHERE a.spent + a.reserved - $6::numeric + EXCLUDED.reserved <= $5::numeric
                 RETURNING 1",
                &[
                    text(&account.budget),
                    text(&account.key),
                    (&account.window, Type::INT8),
                    text(&amount),
                    text(&limit),
                    text(&pending),
                ],
            )?;
            if !booked.is_empty() {
                return Ok(None);
            }
            // Refused: the figures it was refused on (none when there is no account yet).
            let row = client.query_typed_opt(
                "SELECT spent::text, reserved::text FROM llm_cost_budget_accounts
                 WHERE budget = $1 AND key = $2 AND window_id = $3",
                &[
                    text(&account.budget),
                    text(&account.key),
                    (&account.window, Type::INT8),
                ],
            )?;
            Ok(Some(match row {
                Some(row) => (row.try_get::<_, String>(0)?, row.try_get::<_, String>(1)?),
                None => ("0".to_owned(), "0".to_owned()),
            }))
        })?;
        let Some((spent, reserved)) = figures else {
            return Ok(Ok(()));
        };
        let parse = |text: &str| crate::budgets::account_figure(text, &location, &account);
        Ok(Err((parse(&spent)?, parse(&reserved)?)))
    }

    fn settle(&mut self, settles: &[crate::budgets::Settle]) -> Result<(), StoreError> {
        let settles = self.not_yet_applied(|store| &mut store.unconfirmed_settles, settles)?;
        if settles.is_empty() {
            return Ok(());
        }
        // Two statements for the whole batch, one change per account (an account changed twice
        // in one `UPDATE … FROM` would take one of the two).
        let changes = crate::budgets::changes_per_account(&settles);
        let budgets: Vec<&str> = changes.iter().map(|(account, ..)| account.budget).collect();
        let keys: Vec<&str> = changes.iter().map(|(account, ..)| account.key).collect();
        let windows: Vec<i64> = changes.iter().map(|(account, ..)| account.window).collect();
        let released: Vec<String> = changes.iter().map(|(_, r, _)| r.to_string()).collect();
        let costs: Vec<String> = changes.iter().map(|(.., cost)| cost.to_string()).collect();
        self.apply_once(
            |store| &mut store.unconfirmed_settles,
            &settles,
            |transaction| {
                // An account whose window was forgotten meanwhile gets its row again.
                transaction.execute(
                    "INSERT INTO llm_cost_budget_accounts (budget, key, window_id)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
                 ON CONFLICT DO NOTHING",
                    &[&budgets, &keys, &windows],
                )?;
                transaction.execute(
                    "UPDATE llm_cost_budget_accounts AS a SET
                    spent = a.spent + c.cost::numeric,
                    reserved = GREATEST(a.reserved - c.released::numeric, 0)
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])
                    AS c (budget, key, window_id, released, cost)
                 WHERE a.budget = c.budget AND a.key = c.key AND a.window_id = c.window_id",
                    &[&budgets, &keys, &windows, &released, &costs],
                )?;
                Ok(())
            },
        )
    }

    fn accounts(
        &mut self,
        budget: &str,
        window: i64,
    ) -> Result<Vec<crate::budgets::BudgetAccount>, StoreError> {
        let location = self.address.clone();
        let rows = self.with_client(|client| {
            client.query(
                "SELECT key, spent::text, reserved::text FROM llm_cost_budget_accounts
                 WHERE budget = $1 AND window_id = $2 ORDER BY key",
                &[&budget, &window],
            )
        })?;
        rows.iter()
            .map(|row| {
                let text = |i: usize| {
                    row.try_get::<_, String>(i)
                        .map_err(|source| StoreError::Postgres {
                            address: location.clone(),
                            source,
                        })
                };
                let key = text(0)?;
                let account = cost_core::budget::SharedKey {
                    budget,
                    key: &key,
                    window,
                };
                let parse = |text: &str| crate::budgets::account_figure(text, &location, &account);
                let (spent, reserved) = (parse(&text(1)?)?, parse(&text(2)?)?);
                Ok(crate::budgets::BudgetAccount {
                    key,
                    spent,
                    reserved,
                })
            })
            .collect()
    }

    fn forget_before(&mut self, budget: &str, window: i64) -> Result<u64, StoreError> {
        self.with_client(|client| {
            client.execute(
                "DELETE FROM llm_cost_budget_accounts WHERE budget = $1 AND window_id < $2",
                &[&budget, &window],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeouts_a_url_leaves_unset_are_ours_and_those_it_sets_stay() {
        let timeouts = |url: &str| {
            let mut config: postgres::Config = url.parse().unwrap_or_else(|e| panic!("{e}"));
            with_default_timeouts(&mut config);
            (
                config.get_connect_timeout().copied(),
                config.get_tcp_user_timeout().copied(),
            )
        };
        assert_eq!(
            timeouts("postgres://app@db/llm"),
            (Some(CONNECT_TIMEOUT), Some(UNACKNOWLEDGED_TIMEOUT))
        );
        let seconds = std::time::Duration::from_secs;
        assert_eq!(
            timeouts("postgres://app@db/llm?connect_timeout=30&tcp_user_timeout=60"),
            (Some(seconds(30)), Some(seconds(60)))
        );
    }

    fn read(url: &str) -> Result<(String, Option<Option<String>>), String> {
        TlsRequest::read(url).map(|request| {
            let roots = request
                .tls
                .map(|files| files.roots.map(|path| path.display().to_string()));
            (request.client_url, roots)
        })
    }

    #[test]
    fn the_tls_a_url_asks_for_is_read_and_the_client_gets_what_it_understands() {
        let base = "postgres://u:p@db.example:5432/ledger";
        // No TLS asked: the URL as it is.
        assert_eq!(read(base), Ok((base.to_owned(), None)));
        let prefer = format!("{base}?sslmode=prefer&application_name=a");
        assert_eq!(read(&prefer), Ok((prefer.clone(), None)));
        // libpq's modes that check the certificate read as `require`, which here always does.
        for mode in ["require", "verify-ca", "verify-full"] {
            assert_eq!(
                read(&format!("{base}?application_name=a&sslmode={mode}")),
                Ok((
                    format!("{base}?application_name=a&sslmode=require"),
                    Some(None)
                )),
                "{mode}"
            );
        }
        // The authorities' file is taken out of the URL, its path decoded.
        assert_eq!(
            read(&format!(
                "{base}?sslrootcert=%2Fetc%2Fssl%2Fmy%20ca.pem&sslmode=verify-full"
            )),
            Ok((
                format!("{base}?sslmode=require"),
                Some(Some("/etc/ssl/my ca.pem".to_owned()))
            ))
        );
        // libpq's `sslrootcert=system`: the system's authorities.
        assert_eq!(
            read(&format!("{base}?sslmode=verify-full&sslrootcert=system")),
            Ok((format!("{base}?sslmode=require"), Some(None)))
        );
        // Authorities without a mode that requires TLS: refused.
        for query in [
            "sslrootcert=/ca.pem",
            "sslrootcert=/ca.pem&sslmode=prefer",
            "sslrootcert=system",
        ] {
            let error = read(&format!("{base}?{query}")).err().unwrap_or_default();
            assert!(error.contains("does not require TLS"), "{query}: {error}");
        }
    }

    #[test]
    fn a_client_certificate_is_read_from_the_url_with_its_key_and_only_over_tls() {
        let base = "postgres://u@db.example:5432/ledger";
        let request = TlsRequest::read(&format!(
            "{base}?sslmode=verify-full&sslcert=%2Fkeys%2Fclient.pem&sslkey=/keys/client.key&application_name=a"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            request.client_url,
            format!("{base}?sslmode=require&application_name=a")
        );
        assert_eq!(
            request.tls,
            Some(TlsFiles {
                roots: None,
                identity: Some(crate::budgets::TlsClientIdentity {
                    certificate: "/keys/client.pem".into(),
                    key: "/keys/client.key".into(),
                }),
            })
        );
        for (query, expected) in [
            ("sslmode=require&sslcert=/c.pem", "go together"),
            ("sslmode=require&sslkey=/c.key", "go together"),
            ("sslcert=/c.pem&sslkey=/c.key", "does not require TLS"),
            (
                "sslmode=prefer&sslcert=/c.pem&sslkey=/c.key",
                "does not require TLS",
            ),
        ] {
            let error = TlsRequest::read(&format!("{base}?{query}"))
                .err()
                .unwrap_or_default();
            assert!(error.contains(expected), "{query}: {error}");
        }
    }

    #[cfg(feature = "postgres-tls")]
    #[test]
    fn the_client_certificate_given_is_in_the_tls_configuration() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let certificate = rcgen::CertificateParams::new(vec!["client".to_owned()])
            .and_then(|params| params.self_signed(&key))
            .unwrap_or_else(|e| panic!("{e}"));
        let other_key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let files = [
            ("ca.pem", certificate.pem()),
            ("client.pem", certificate.pem()),
            ("client.key", key.serialize_pem()),
            ("other.key", other_key.serialize_pem()),
        ];
        for (name, pem) in &files {
            std::fs::write(dir.path().join(name), pem).unwrap_or_else(|e| panic!("{e}"));
        }
        let with_key = |key: &str| TlsFiles {
            roots: Some(dir.path().join("ca.pem")),
            identity: Some(crate::budgets::TlsClientIdentity {
                certificate: dir.path().join("client.pem"),
                key: dir.path().join(key),
            }),
        };
        let config = tls::client_config(&with_key("client.key")).unwrap_or_else(|e| panic!("{e}"));
        assert!(config.client_auth_cert_resolver.has_certs());
        let without = tls::client_config(&TlsFiles {
            identity: None,
            ..with_key("client.key")
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!without.client_auth_cert_resolver.has_certs());
        // A key of another certificate, or one that is not there: an error naming the file.
        let error = tls::client_config(&with_key("other.key"))
            .err()
            .unwrap_or_default();
        assert!(error.contains("do not go together"), "{error}");
        let error = tls::client_config(&with_key("missing.key"))
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("client key") && error.contains("missing.key"),
            "{error}"
        );
    }
}
