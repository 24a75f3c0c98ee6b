//! Budget accounts in Redis ([`crate::budgets()`] with a `redis://` or `redis+unix://` URL): the
//! shared accounts of every process that reaches one Redis server.
//!
//! # Keys
//!
//! With the prefix of [`BudgetOptions::key_prefix`](crate::BudgetOptions::key_prefix) (default
//! `llm-cost`) and `N` the length in bytes of the budget's name (so a name holding `:` cannot
//! be read as another):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:budget:{N}:{budget}:{window}:{key}` | hash | `spent`, `reserved`: exact decimal USD |
//! | `{prefix}:budget-accounts:{N}:{budget}:{window}` | set | the keys with an account in the window |
//! | `{prefix}:budget-windows:{N}:{budget}` | sorted set | the windows with accounts, scored by number |
//! | `{prefix}:last-transaction:{id}` | string | the number of the last transaction (a reservation or a batch of settlements) one connection's accounts applied (`id`: random, theirs), kept a week |
//!
//! # Exactness and atomicity
//!
//! Money is kept as decimal text and added in Rust ([`Money`]), never as a Redis float
//! (`INCRBYFLOAT`) or a Lua number, both binary floating point. A reservation is an optimistic
//! transaction: `WATCH` the account, read it, and, when `spent + reserved + amount ≤ limit`,
//! write it back in `MULTI`/`EXEC`, which Redis refuses if any other client wrote the account in
//! between; the reservation is then read and checked again. Racing processes therefore never
//! admit more than a limit. A batch of settlements is one such transaction over all its
//! accounts: applied whole or not at all, and at most once. After [`MAX_ATTEMPTS`] refused
//! transactions in a row the store is reported [contended](StoreError::Contended) (a reservation then follows the
//! book's [`Unavailable`](cost_core::budget::Unavailable) policy; a batch is retried later).
//!
//! When the answer to an `EXEC` is lost (the connection cut after the request left), whether
//! the transaction landed is found out, not guessed: each transaction also writes its number to
//! the accounts' own `last-transaction` key, and before the next one the connection the lost one
//! was sent on is cut (`CLIENT KILL ID`, so that it cannot still land later) and the key read.
//! A batch of settlements that landed is left out of its retry, so it is applied once; a
//! reservation that landed (its caller was told the store could not be reached) is released
//! before the next reservation, so it does not hold the budget until its window ends. (Where
//! the server's access rules refuse `CLIENT KILL`, the key is read all the same: a request
//! still in flight on the old connection could then land after the check.)
//!
//! Accounts of past windows are deleted by [`BudgetBackend::forget_before`] through the two
//! indexes, without scanning the keyspace, each window in a transaction that watches its index
//! (an account booked in it meanwhile is deleted with it, never left unindexed).
//!
//! One server (or primary) holds them: a transaction over many keys cannot span the slots of
//! Redis Cluster. They are as durable as the server's persistence makes them.

use std::borrow::Cow;
use std::time::Duration;

use cost_core::Money;
use cost_core::budget::SharedKey;
use redis::{Connection, RedisResult};

use crate::budgets::{BudgetAccount, BudgetBackend, Settle, TlsFiles};
use crate::store::{StoreError, address_without_secrets};
use crate::unconfirmed::{Unconfirmed, without};

/// Transactions refused in a row (another client wrote a watched account) before the store is
/// reported contended.
pub(crate) const MAX_ATTEMPTS: u32 = 64;

/// How long connecting, and each read or write, may take before the store counts as down.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How long the number of the last transaction applied is kept, in seconds: far longer than a
/// retry waits once the server answers again.
const LAST_TRANSACTION_KEPT: u64 = 7 * 86_400;

/// A transaction whose `EXEC` was sent and not answered: its number, and the server's id of the
/// connection it was sent on.
#[derive(Clone, Copy)]
struct SentTransaction {
    number: u64,
    connection: Option<i64>,
}

/// Where an unconfirmed transaction is kept: a field of the accounts.
type UnconfirmedSlot =
    fn(&mut RedisBudgetAccounts) -> &mut Option<Unconfirmed<Settle, SentTransaction>>;

/// Budget accounts on one Redis server, through one connection (reconnected after an error).
pub(crate) struct RedisBudgetAccounts {
    client: redis::Client,
    connection: Option<Connection>,
    /// The server's id of `connection` (`CLIENT ID`), or of the last one once it is dropped.
    connection_id: Option<i64>,
    /// The server, without credentials, for messages.
    address: String,
    prefix: String,
    /// Where each transaction writes its number: these accounts' own key.
    last_transaction_key: String,
    /// Transactions numbered so far.
    transactions: u64,
    /// The last batch of settlements whose `EXEC` was sent and not answered: whether it landed
    /// is asked before the next batch, so a retry never applies it twice.
    unconfirmed_settles: Option<Unconfirmed<Settle, SentTransaction>>,
    /// The same for the last reservation, kept as the settlement that releases it.
    unconfirmed_reservation: Option<Unconfirmed<Settle, SentTransaction>>,
    /// Reservations that landed though their answer was lost, released before the next.
    unreleased: Vec<Settle>,
    /// Loses the next transaction's `EXEC`, or its answer, as a connection cut then would
    /// (tests).
    #[cfg(test)]
    lose_next_exec: Option<tests::Lost>,
    /// Runs between a transaction's read and its write (tests: another client writing then).
    #[cfg(test)]
    after_read: Option<Box<dyn FnMut() + Send>>,
}

/// The figures of one account as read: `spent`, `reserved`.
type Figures = (Option<String>, Option<String>);

impl RedisBudgetAccounts {
    /// Connects to the server at `url`, keeping keys under `prefix`; over TLS (`rediss://`),
    /// its certificate is checked against the certificate authorities of `tls`'s roots, else
    /// the system's, and `tls`'s client identity, if any, is presented.
    pub(crate) fn connect(url: &str, prefix: &str, tls: &TlsFiles) -> Result<Self, StoreError> {
        let address = address_without_secrets(url);
        let client = open_client(url, &address, tls)?;
        let mut accounts = RedisBudgetAccounts {
            client,
            connection: None,
            connection_id: None,
            address,
            last_transaction_key: format!("{prefix}:last-transaction:{:016x}", random_id()),
            transactions: 0,
            unconfirmed_settles: None,
            unconfirmed_reservation: None,
            unreleased: Vec::new(),
            prefix: prefix.to_owned(),
            #[cfg(test)]
            after_read: None,
            #[cfg(test)]
            lose_next_exec: None,
        };
        accounts.with_connection(|connection| redis::cmd("PING").exec(connection))?;
        Ok(accounts)
    }

    /// Runs `f` on the connection, connecting first when there is none; an error drops the
    /// connection, so the next call connects anew.
    fn with_connection<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => {
                let (connection, id) = self.open_connection().map_err(|e| self.error(e))?;
                self.connection_id = Some(id);
                connection
            }
        };
        let connection = self.connection.insert(connection);
        let result = f(connection);
        if result.is_err() {
            self.connection = None;
        }
        result.map_err(|e| self.error(e))
    }

    /// A new connection, named after the prefix (`CLIENT LIST` shows whose it is), and its id
    /// at the server.
    fn open_connection(&self) -> RedisResult<(Connection, i64)> {
        let mut connection = self.client.get_connection_with_timeout(TIMEOUT)?;
        connection.set_read_timeout(Some(TIMEOUT))?;
        connection.set_write_timeout(Some(TIMEOUT))?;
        // Names may not hold spaces or control characters.
        let name: String = self
            .prefix
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect();
        let (id,) = redis::pipe()
            .cmd("CLIENT")
            .arg("SETNAME")
            .arg(name)
            .ignore()
            .cmd("CLIENT")
            .arg("ID")
            .query(&mut connection)?;
        Ok((connection, id))
    }

    fn error(&self, source: redis::RedisError) -> StoreError {
        StoreError::Redis {
            address: self.address.clone(),
            source,
        }
    }

    fn account_key(&self, account: &SharedKey<'_>) -> String {
        format!(
            "{}:budget:{}:{}:{}:{}",
            self.prefix,
            account.budget.len(),
            account.budget,
            account.window,
            account.key
        )
    }

    fn window_accounts_key(&self, budget: &str, window: i64) -> String {
        format!(
            "{}:budget-accounts:{}:{budget}:{window}",
            self.prefix,
            budget.len()
        )
    }

    fn windows_key(&self, budget: &str) -> String {
        format!("{}:budget-windows:{}:{budget}", self.prefix, budget.len())
    }

    /// Reads figures as stored: absent is zero, anything else must be exact decimal text.
    fn parse(&self, key: &str, figures: Figures) -> Result<(Money, Money), StoreError> {
        let parse = |text: Option<String>| match text {
            None => Ok(Money::ZERO),
            Some(text) => Money::from_decimal(&text).map_err(|e| StoreError::Corrupt {
                location: format!("Redis {} {key}", self.address),
                message: e.to_string(),
            }),
        };
        Ok((parse(figures.0)?, parse(figures.1)?))
    }

    /// Adds to `pipe` the writes of one account's figures, and its place in the indexes.
    fn write_figures(
        &self,
        pipe: &mut redis::Pipeline,
        account: &SharedKey<'_>,
        spent: Money,
        reserved: Money,
    ) {
        pipe.hset_multiple(
            self.account_key(account),
            &[
                ("spent", spent.to_string()),
                ("reserved", reserved.to_string()),
            ],
        )
        .ignore()
        .sadd(
            self.window_accounts_key(account.budget, account.window),
            account.key,
        )
        .ignore()
        .zadd(
            self.windows_key(account.budget),
            account.window,
            account.window,
        )
        .ignore();
    }

    /// Deletes the accounts of one window of `budget` and its place in the indexes, in one
    /// transaction that watches the window's index: a settlement landing in the window
    /// meanwhile (a call in flight for days) has the window read again, so no account is left
    /// without its index. Returns how many accounts were deleted.
    fn forget_window(&mut self, budget: &str, window: i64) -> Result<u64, StoreError> {
        let accounts_key = self.window_accounts_key(budget, window);
        let windows_key = self.windows_key(budget);
        self.until_applied(|this| {
            let (keys,): (Vec<String>,) = this.with_connection(|connection| {
                redis::pipe()
                    .cmd("WATCH")
                    .arg(&accounts_key)
                    .ignore()
                    .smembers(&accounts_key)
                    .query(connection)
            })?;
            let accounts: Vec<String> = keys
                .iter()
                .map(|key| {
                    this.account_key(&SharedKey {
                        budget,
                        key,
                        window,
                    })
                })
                .collect();
            #[cfg(test)]
            if let Some(after_read) = this.after_read.as_mut() {
                after_read();
            }
            let mut delete = redis::pipe();
            delete.atomic();
            for chunk in accounts.chunks(512) {
                delete.del(chunk);
            }
            delete.del(&accounts_key).ignore();
            delete.zrem(&windows_key, window).ignore();
            // `None`: the window changed after it was read; nothing was deleted.
            let deleted: Option<Vec<u64>> = this.with_connection(|c| delete.query(c))?;
            Ok(deleted.map(|deleted| deleted.iter().sum()))
        })
    }

    /// Runs `attempt` (a watched read, then a transaction) until Redis applies it: `Ok(None)`
    /// is a transaction refused because another client wrote what it watched, run again, up to
    /// [`MAX_ATTEMPTS`] times. An error ends it, the watch released on a connection still open.
    fn until_applied<T>(
        &mut self,
        mut attempt: impl FnMut(&mut Self) -> Result<Option<T>, StoreError>,
    ) -> Result<T, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            match attempt(self) {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => {}
                Err(error) => {
                    if let Some(connection) = self.connection.as_mut() {
                        let _ = redis::cmd("UNWATCH").exec(connection);
                    }
                    return Err(error);
                }
            }
        }
        Err(self.contended())
    }

    /// What the unconfirmed transaction in `slot` held, when it turns out to have landed;
    /// `None` when it did not, or when none is unconfirmed. The slot is emptied once the
    /// server answers. The connection the transaction was sent on is cut first, so that it
    /// cannot land after the answer.
    fn landed(&mut self, slot: UnconfirmedSlot) -> Result<Option<Vec<Settle>>, StoreError> {
        let Some(sent) = slot(self).as_ref().map(|transaction| transaction.mark) else {
            return Ok(None);
        };
        let key = self.last_transaction_key.clone();
        let last_applied: Option<u64> = self.with_connection(|connection| {
            if let Some(id) = sent.connection {
                let cut: RedisResult<i64> = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(id)
                    .query(connection);
                // Refused by the server (its access rules): the key is read all the same.
                if let Err(error) = cut
                    && !matches!(error.kind(), redis::ErrorKind::Server(_))
                {
                    return Err(error);
                }
            }
            redis::cmd("GET").arg(&key).query(connection)
        })?;
        let transaction = slot(self).take();
        Ok(transaction
            .filter(|_| last_applied == Some(sent.number))
            .map(|transaction| transaction.items))
    }

    /// Sends `write` (a transaction, its `MULTI`/`EXEC` set) with `number` written to the
    /// accounts' `last-transaction` key in it: `None` when the server refused it because an
    /// account it watched changed. `awaiting_answer` is set while its `EXEC` is sent and not
    /// answered: still set after an error, the transaction may have landed.
    fn send_numbered(
        &mut self,
        mut write: redis::Pipeline,
        number: u64,
        awaiting_answer: &mut bool,
    ) -> Result<Option<()>, StoreError> {
        write
            .set_ex(&self.last_transaction_key, number, LAST_TRANSACTION_KEPT)
            .ignore();
        #[cfg(test)]
        let lost = self.lose_next_exec.take();
        let applied = self.with_connection(|connection| {
            *awaiting_answer = true;
            #[cfg(test)]
            if let Some(lost) = lost {
                if lost == tests::Lost::Answer {
                    write.query::<Option<()>>(connection)?;
                }
                return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
            }
            write.query(connection)
        })?;
        *awaiting_answer = false;
        Ok(applied)
    }

    /// Keeps in `slot` the transaction `number`, holding `items`, when `result` is an error that
    /// came while its `EXEC` was awaiting its answer.
    fn keep_unconfirmed<T>(
        &mut self,
        slot: UnconfirmedSlot,
        result: &Result<T, StoreError>,
        awaiting_answer: bool,
        number: u64,
        items: impl FnOnce() -> Vec<Settle>,
    ) {
        if result.is_err() && awaiting_answer {
            *slot(self) = Some(Unconfirmed {
                mark: SentTransaction {
                    number,
                    connection: self.connection_id,
                },
                items: items(),
            });
        }
    }

    /// The number of the next transaction.
    fn next_transaction(&mut self) -> u64 {
        self.transactions += 1;
        self.transactions
    }

    fn contended(&self) -> StoreError {
        StoreError::Contended {
            location: format!("Redis {}", self.address),
            attempts: MAX_ATTEMPTS,
        }
    }
}

/// Whether a read of accounts watches them for the transaction that follows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Watched: the transaction that follows is refused if any of them changes before it runs.
    Watch,
    /// Read once, for a listing.
    Unwatched,
}
use Reading::{Unwatched, Watch};

/// Reads the figures of `keys` (watching them first when `reading` says), in one round trip.
fn read(
    connection: &mut Connection,
    keys: &[String],
    reading: Reading,
) -> RedisResult<Vec<Figures>> {
    let mut read = redis::pipe();
    if reading == Watch {
        read.cmd("WATCH").arg(keys).ignore();
    }
    for key in keys {
        read.hmget(key, &["spent", "reserved"]);
    }
    read.query(connection)
}

impl BudgetBackend for RedisBudgetAccounts {
    fn try_reserve(
        &mut self,
        account: SharedKey<'_>,
        amount: Money,
        limit: Money,
        pending: Money,
    ) -> Result<Result<(), (Money, Money)>, StoreError> {
        // A reservation that landed though its answer was lost is released first.
        if let Some(release) = self.landed(|accounts| &mut accounts.unconfirmed_reservation)? {
            self.unreleased.extend(release);
        }
        if !self.unreleased.is_empty() {
            let unreleased = std::mem::take(&mut self.unreleased);
            if let Err(error) = self.settle(&unreleased) {
                self.unreleased = unreleased;
                return Err(error);
            }
        }
        let keys = [self.account_key(&account)];
        let number = self.next_transaction();
        let mut awaiting_answer = false;
        let booked = self.until_applied(|this| {
            let figures = this.with_connection(|connection| read(connection, &keys, Watch))?;
            let figures = figures.into_iter().next().unwrap_or((None, None));
            let (spent, reserved) = this.parse(&keys[0], figures)?;
            if spent + reserved - pending + amount > limit {
                this.with_connection(|connection| redis::cmd("UNWATCH").exec(connection))?;
                return Ok(Some(Err((spent, reserved))));
            }
            #[cfg(test)]
            if let Some(after_read) = this.after_read.as_mut() {
                after_read();
            }
            let mut write = redis::pipe();
            write.atomic();
            this.write_figures(&mut write, &account, spent, reserved + amount);
            // `None`: another client wrote the account after it was read; nothing was written.
            let applied = this.send_numbered(write, number, &mut awaiting_answer)?;
            Ok(applied.map(Ok))
        });
        self.keep_unconfirmed(
            |accounts| &mut accounts.unconfirmed_reservation,
            &booked,
            awaiting_answer,
            number,
            || vec![Settle::of(account, amount, Money::ZERO)],
        );
        booked
    }

    fn settle(&mut self, settles: &[Settle]) -> Result<(), StoreError> {
        // A retry brings a batch that landed again.
        let settles = match self.landed(|accounts| &mut accounts.unconfirmed_settles)? {
            Some(applied) => Cow::Owned(without(settles, &applied)),
            None => Cow::Borrowed(settles),
        };
        if settles.is_empty() {
            return Ok(());
        }
        let changes = crate::budgets::changes_per_account(&settles);
        let keys: Vec<String> = changes
            .iter()
            .map(|(account, ..)| self.account_key(account))
            .collect();
        let number = self.next_transaction();
        let mut awaiting_answer = false;
        let applied = self.until_applied(|this| {
            let figures = this.with_connection(|connection| read(connection, &keys, Watch))?;
            let mut write = redis::pipe();
            write.atomic();
            for ((account, released, cost), (key, figures)) in
                changes.iter().zip(keys.iter().zip(figures))
            {
                let (spent, reserved) = this.parse(key, figures)?;
                let reserved = (reserved - *released).max(Money::ZERO);
                this.write_figures(&mut write, account, spent + *cost, reserved);
            }
            // `None`: another client wrote an account after it was read; nothing was written.
            this.send_numbered(write, number, &mut awaiting_answer)
        });
        self.keep_unconfirmed(
            |accounts| &mut accounts.unconfirmed_settles,
            &applied,
            awaiting_answer,
            number,
            || settles.into_owned(),
        );
        applied
    }

    fn accounts(&mut self, budget: &str, window: i64) -> Result<Vec<BudgetAccount>, StoreError> {
        let accounts_key = self.window_accounts_key(budget, window);
        let mut keys: Vec<String> =
            self.with_connection(|c| redis::cmd("SMEMBERS").arg(&accounts_key).query(c))?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        keys.sort();
        let stored: Vec<String> = keys
            .iter()
            .map(|key| {
                self.account_key(&SharedKey {
                    budget,
                    key,
                    window,
                })
            })
            .collect();
        let figures = self.with_connection(|c| read(c, &stored, Unwatched))?;
        keys.into_iter()
            .zip(stored.iter().zip(figures))
            .map(|(key, (stored, figures))| {
                let (spent, reserved) = self.parse(stored, figures)?;
                Ok(BudgetAccount {
                    key,
                    spent,
                    reserved,
                })
            })
            .collect()
    }

    fn forget_before(&mut self, budget: &str, window: i64) -> Result<u64, StoreError> {
        let windows_key = self.windows_key(budget);
        let past: Vec<i64> = self.with_connection(|connection| {
            redis::cmd("ZRANGE")
                .arg(&windows_key)
                .arg("-inf")
                .arg(format!("({window}"))
                .arg("BYSCORE")
                .query(connection)
        })?;
        let mut forgotten = 0;
        for old in past {
            forgotten += self.forget_window(budget, old)?;
        }
        Ok(forgotten)
    }
}

/// A random number, different in each call and each process (from the standard library's
/// randomly keyed hasher, with the process id and the time).
fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos()),
    );
    hasher.finish()
}

/// The client of the server at `url`. A `rediss://` one trusts the certificate authorities of
/// the PEM file `tls.roots` (unreadable or holding no certificate: an error naming it), else the
/// system's, and presents `tls.identity` when given (an unreadable file: an error naming it);
/// it first makes sure the process has a default rustls crypto provider (installing ring's when
/// it has none), which rustls needs to build a TLS configuration. TLS files given for an address
/// without TLS are refused ([`StoreError::Tls`]): the connection would be in the clear where
/// TLS was meant.
fn open_client(url: &str, address: &str, tls: &TlsFiles) -> Result<redis::Client, StoreError> {
    let tls_error = |message: String| StoreError::Tls {
        location: format!("Redis {address}"),
        message,
    };
    let redis_error = |source| StoreError::Redis {
        address: address.to_owned(),
        source,
    };
    if !url.starts_with("rediss://") {
        let given = match (&tls.roots, &tls.identity) {
            (Some(_), _) => Some("certificate authorities are"),
            (None, Some(_)) => Some("a client certificate is"),
            (None, None) => None,
        };
        if let Some(given) = given {
            return Err(tls_error(format!(
                "{given} given for an address without TLS (use rediss://)"
            )));
        }
    }
    #[cfg(feature = "redis-tls")]
    if url.starts_with("rediss://") {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Refused only when another thread installed one meanwhile: that one serves.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        if tls.roots.is_some() || tls.identity.is_some() {
            let read = |what: &str, path: &std::path::Path| {
                std::fs::read(path).map_err(|error| {
                    tls_error(format!("cannot read {what} in {}: {error}", path.display()))
                })
            };
            let root_cert = tls
                .roots
                .as_deref()
                .map(|path| read("the certificate authorities", path))
                .transpose()?;
            let client_tls = match &tls.identity {
                Some(identity) => Some(redis::ClientTlsConfig {
                    client_cert: read("the client certificate", &identity.certificate)?,
                    client_key: read("the client key", &identity.key)?,
                }),
                None => None,
            };
            return redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls,
                    root_cert,
                },
            )
            .map_err(redis_error);
        }
    }
    let _ = tls;
    redis::Client::open(url).map_err(redis_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test server (`LLM_COST_TEST_REDIS`, else loopback), or `None` when it does not
    /// answer and `LLM_COST_REQUIRE_REDIS=1` (as `.ci/run` sets) is not set.
    fn server() -> Option<String> {
        let url = std::env::var("LLM_COST_TEST_REDIS")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
        let reachable = redis::Client::open(url.as_str())
            .and_then(|client| client.get_connection_with_timeout(TIMEOUT))
            .map(drop);
        match reachable {
            Ok(()) => Some(url),
            Err(error) if std::env::var("LLM_COST_REQUIRE_REDIS").as_deref() == Ok("1") => {
                panic!("Redis required but not reachable at {url}: {error}")
            }
            Err(error) => {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED redis_budgets: Redis not reachable at {url} ({error})"
                );
                None
            }
        }
    }

    /// Deletes the keys under a prefix (`.1`) on a server (`.0`) when dropped, also when the
    /// test fails.
    struct Cleanup(String, String);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let Ok(mut connection) =
                redis::Client::open(self.0.as_str()).and_then(|c| c.get_connection())
            else {
                return;
            };
            let keys: RedisResult<Vec<String>> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.1))
                .query(&mut connection);
            if let Ok(keys) = keys
                && !keys.is_empty()
            {
                let _: RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut connection);
            }
        }
    }

    /// Accounts under a prefix of the test's own on the test server, and what deletes their
    /// keys; `None` when the test is skipped.
    fn accounts_of(test: &str) -> Option<(RedisBudgetAccounts, Cleanup)> {
        let url = server()?;
        let prefix = format!("llm-cost-unit-{test}-{}", std::process::id());
        let cleanup = Cleanup(url.clone(), prefix.clone());
        let accounts = RedisBudgetAccounts::connect(&url, &prefix, &TlsFiles::default())
            .unwrap_or_else(|e| panic!("{e}"));
        Some((accounts, cleanup))
    }

    fn usd(text: &str) -> Money {
        Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// What a connection cut while a settlement batch is sent loses.
    #[derive(Clone, Copy, PartialEq, Debug)]
    pub(super) enum Lost {
        /// The `EXEC` reached the server, its answer never came back.
        Answer,
        /// The `EXEC` never reached the server.
        Request,
    }

    /// Reserves `reserved` on the account of `key`, then settles it at `cost` in a batch whose
    /// `EXEC` (or its answer) is lost and which is retried, with `then` (another settlement
    /// queued meanwhile) after it: the account's `spent` and `reserved` as stored. The
    /// reservations, and a batch of another account's, are applied before: the key of the last
    /// transaction applied then holds another number when the lost one did not land.
    fn settle_across_a_cut(test: &str, lost: Lost) -> (Option<String>, Option<String>) {
        let Some((mut accounts, _cleanup)) = accounts_of(test) else {
            return (None, None);
        };
        settle_across_a_cut_in(&mut accounts, lost)
    }

    /// [`settle_across_a_cut`] on `accounts`.
    fn settle_across_a_cut_in(
        accounts: &mut RedisBudgetAccounts,
        lost: Lost,
    ) -> (Option<String>, Option<String>) {
        let account = SharedKey {
            budget: "per_user_daily",
            key: "noa",
            window: 20_417,
        };
        let booked = |accounts: &mut RedisBudgetAccounts, amount| {
            let booked = accounts.try_reserve(account, usd(amount), usd("10"), Money::ZERO);
            assert_eq!(booked.ok(), Some(Ok(())));
        };
        let other = SharedKey {
            key: "lee",
            ..account
        };
        let booked_other = accounts.try_reserve(other, usd("0.10"), usd("10"), Money::ZERO);
        assert_eq!(booked_other.ok(), Some(Ok(())));
        let settled_other = accounts.settle(&[Settle::of(other, usd("0.10"), usd("0.10"))]);
        assert!(settled_other.is_ok(), "{settled_other:?}");
        booked(accounts, "0.30");
        booked(accounts, "0.50");
        let first = Settle::of(account, usd("0.30"), usd("0.20"));
        let second = Settle::of(account, usd("0.50"), usd("0.05"));
        accounts.lose_next_exec = Some(lost);
        assert!(accounts.settle(std::slice::from_ref(&first)).is_err());
        // Retried with a settlement queued since.
        let retried = accounts.settle(&[first, second]);
        assert!(retried.is_ok(), "{retried:?}");
        assert!(accounts.unconfirmed_settles.is_none());
        let key = accounts.account_key(&account);
        accounts
            .with_connection(|c| {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("spent")
                    .arg("reserved")
                    .query(c)
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_settlement_batch_whose_exec_answer_is_lost_is_applied_once() {
        let Some(_) = server() else { return };
        let (spent, reserved) = settle_across_a_cut("lost_answer", Lost::Answer);
        // Applied twice, the first would read 0.4 spent.
        assert_eq!(spent.as_deref(), Some("0.25"));
        assert_eq!(reserved.as_deref(), Some("0"));
    }

    /// A user of the test server that may do everything but `CLIENT KILL`, deleted when
    /// dropped: `.1` its name on the server at `.0`.
    struct UserWithoutKill(String, String);

    impl UserWithoutKill {
        fn create(url: &str) -> UserWithoutKill {
            let name = format!("llm-cost-unit-no-kill-{}", std::process::id());
            let created: RedisResult<()> = redis::Client::open(url)
                .and_then(|client| client.get_connection())
                .and_then(|mut admin| {
                    redis::cmd("ACL")
                        .arg("SETUSER")
                        .arg(&name)
                        .arg("reset")
                        .arg("on")
                        .arg(">no-kill")
                        .arg("~*")
                        .arg("&*")
                        .arg("+@all")
                        .arg("-client|kill")
                        .query(&mut admin)
                });
            created.unwrap_or_else(|e| panic!("{e}"));
            UserWithoutKill(url.to_owned(), name)
        }

        /// The server's URL, as this user.
        fn url(&self) -> String {
            let (scheme, rest) = self.0.split_once("://").unwrap_or(("redis", &self.0));
            let server = rest.rsplit_once('@').map_or(rest, |(_, server)| server);
            format!("{scheme}://{}:no-kill@{server}", self.1)
        }
    }

    impl Drop for UserWithoutKill {
        fn drop(&mut self) {
            if let Ok(mut admin) =
                redis::Client::open(self.0.as_str()).and_then(|client| client.get_connection())
            {
                let _: RedisResult<()> = redis::cmd("ACL")
                    .arg("DELUSER")
                    .arg(&self.1)
                    .query(&mut admin);
            }
        }
    }

    #[test]
    fn a_batch_whose_answer_is_lost_is_applied_once_where_client_kill_is_refused() {
        let Some(url) = server() else { return };
        let user = UserWithoutKill::create(&url);
        let prefix = format!("llm-cost-unit-no-kill-{}", std::process::id());
        let _cleanup = Cleanup(url.clone(), prefix.clone());
        let mut accounts = RedisBudgetAccounts::connect(&user.url(), &prefix, &TlsFiles::default())
            .unwrap_or_else(|e| panic!("{e}"));
        // The connection the batch was sent on cannot be cut: the key is read all the same.
        let (spent, reserved) = settle_across_a_cut_in(&mut accounts, Lost::Answer);
        assert_eq!(spent.as_deref(), Some("0.25"));
        assert_eq!(reserved.as_deref(), Some("0"));
    }

    #[test]
    fn a_settlement_batch_whose_exec_never_reached_the_server_is_applied_on_retry() {
        let Some(_) = server() else { return };
        let (spent, reserved) = settle_across_a_cut("lost_request", Lost::Request);
        assert_eq!(spent.as_deref(), Some("0.25"));
        assert_eq!(reserved.as_deref(), Some("0"));
    }

    /// Reserves $0.50 on an account, then $0.30 in a transaction whose `EXEC` (or its answer)
    /// is lost, then $0.10: the account's `reserved` as stored.
    fn reserve_across_a_cut(test: &str, lost: Lost) -> Option<String> {
        let (mut accounts, _cleanup) = accounts_of(test)?;
        let account = SharedKey {
            budget: "per_user_daily",
            key: "noa",
            window: 20_417,
        };
        let reserve = |accounts: &mut RedisBudgetAccounts, amount| {
            accounts.try_reserve(account, usd(amount), usd("1"), Money::ZERO)
        };
        assert_eq!(reserve(&mut accounts, "0.50").ok(), Some(Ok(())));
        accounts.lose_next_exec = Some(lost);
        assert!(reserve(&mut accounts, "0.30").is_err());
        assert_eq!(reserve(&mut accounts, "0.10").ok(), Some(Ok(())));
        assert!(accounts.unconfirmed_reservation.is_none());
        assert!(accounts.unreleased.is_empty());
        let key = accounts.account_key(&account);
        accounts
            .with_connection(|c| redis::cmd("HGET").arg(&key).arg("reserved").query(c))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_reservation_whose_exec_answer_is_lost_is_released_before_the_next() {
        let Some(_) = server() else { return };
        // Left booked, its $0.30 would read 0.9.
        let reserved = reserve_across_a_cut("lost_reservation_answer", Lost::Answer);
        assert_eq!(reserved.as_deref(), Some("0.6"));
    }

    #[test]
    fn a_reservation_whose_exec_never_reached_the_server_is_not_released() {
        let Some(_) = server() else { return };
        // Released all the same, the account would read 0.3.
        let reserved = reserve_across_a_cut("lost_reservation_request", Lost::Request);
        assert_eq!(reserved.as_deref(), Some("0.6"));
    }

    #[test]
    fn a_reservation_whose_account_changed_after_it_was_read_reads_it_again() {
        let Some((mut accounts, cleanup)) = accounts_of("reread") else {
            return;
        };
        let account = SharedKey {
            budget: "per_user_daily",
            key: "ivy",
            window: 20_417,
        };
        let key = accounts.account_key(&account);
        // Another process books $0.95 on the account just after this one read it as empty.
        let mut other = redis::Client::open(cleanup.0.as_str())
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|e| panic!("{e}"));
        let other_key = key.clone();
        let mut writes = 0;
        accounts.after_read = Some(Box::new(move || {
            if writes == 0 {
                let written: RedisResult<()> = redis::cmd("HSET")
                    .arg(&other_key)
                    .arg("reserved")
                    .arg("0.95")
                    .query(&mut other);
                written.unwrap_or_else(|e| panic!("{e}"));
            }
            writes += 1;
        }));
        let first = accounts.try_reserve(account, usd("0.1"), usd("1"), Money::ZERO);
        // Checked again on what the other process booked: 0.95 + 0.1 > 1.
        assert_eq!(first.ok(), Some(Err((Money::ZERO, usd("0.95")))));
        let second = accounts.try_reserve(account, usd("0.05"), usd("1"), Money::ZERO);
        assert_eq!(second.ok(), Some(Ok(())));
        let reserved: Option<String> = accounts
            .with_connection(|c| redis::cmd("HGET").arg(&key).arg("reserved").query(c))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reserved.as_deref(), Some("1"));
    }

    #[test]
    fn an_account_booked_in_a_window_while_it_is_forgotten_is_forgotten_with_it() {
        let Some((mut accounts, cleanup)) = accounts_of("forget") else {
            return;
        };
        let account = |key| SharedKey {
            budget: "per_user_daily",
            key,
            window: 7,
        };
        let booked = accounts.try_reserve(account("early"), usd("1"), usd("1"), Money::ZERO);
        assert_eq!(booked.ok(), Some(Ok(())));
        // Another process books in that window after this one read its accounts.
        let mut other = RedisBudgetAccounts::connect(&cleanup.0, &cleanup.1, &TlsFiles::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut writes = 0;
        accounts.after_read = Some(Box::new(move || {
            if writes == 0 {
                let late = other.try_reserve(account("late"), usd("1"), usd("1"), Money::ZERO);
                assert_eq!(late.ok(), Some(Ok(())));
            }
            writes += 1;
        }));
        assert_eq!(accounts.forget_before("per_user_daily", 8).ok(), Some(2));
        let left: Vec<String> = accounts
            .with_connection(|c| redis::cmd("KEYS").arg(format!("{}:*", cleanup.1)).query(c))
            .unwrap_or_else(|e| panic!("{e}"));
        // Only the numbers of the last transactions of the two accounts' connections.
        let transactions = format!("{}:last-transaction:", cleanup.1);
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(
            left.iter().all(|key| key.starts_with(&transactions)),
            "{left:?}"
        );
    }
}
