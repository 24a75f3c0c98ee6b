//! Shared by the store tests: sample records and a PostgreSQL database of their own.

#![allow(dead_code)]

use std::borrow::Cow;
use std::sync::Arc;

use cost_layer::cost_core::{CostBreakdown, Money, Usage};
use cost_store::{CallRecord, CallStatus};

/// A temporary directory and the address of the store file `file` in it (the file is gone
/// with the directory).
pub(crate) fn temp_address(file: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let address = dir
        .path()
        .join(file)
        .to_str()
        .unwrap_or_default()
        .to_owned();
    (dir, address)
}

pub(crate) fn usd(text: &str) -> Money {
    Money::from_decimal(text).unwrap_or_else(|e| panic!("{e}"))
}

/// A priced gpt-4o call at `at_ms` for `feature`: 1 000 in, 100 out = $0.0035.
pub(crate) fn record(at_ms: i64, feature: &str) -> CallRecord {
    CallRecord {
        id: None,
        at_ms,
        duration_us: 1_250,
        name: Cow::Borrowed("chat"),
        span_id: u64::MAX - 3, // beyond i64: stored bit for bit
        parent_span_id: Some(7),
        request_model: Some(Arc::from("gpt-4o")),
        response_model: Some(Arc::from("gpt-4o-2024-08-06")),
        model: Arc::from("gpt-4o"),
        status: CallStatus::Priced,
        price_table: Some(Arc::from("2025.11.24")),
        provider: Some(Arc::from("openai")),
        operation: Some(Arc::from("chat")),
        service_tier: cost_layer::cost_core::ServiceTier::Standard,
        data_residency: false,
        search_context_size: None,
        reported_cost: None,
        session: Some(Arc::from("s-1")),
        agent: Some(Arc::from("planner")),
        user: Some(Arc::from("u:0123456789abcdef0123456789abcdef")),
        org: None,
        feature: Some(Arc::from(feature)),
        usage: Usage::new(1_000, 100),
        cost: CostBreakdown {
            uncached_input: usd("0.0025"),
            output: usd("0.001"),
            ..CostBreakdown::default()
        },
        cache_hit_savings: Money::ZERO,
        previous_cost: None,
        repriced_with: None,
    }
}

/// Where the PostgreSQL tests connect: `LLM_COST_TEST_POSTGRES`, else the loopback server of
/// this project's machines.
pub(crate) fn postgres_url() -> String {
    std::env::var("LLM_COST_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The connection to a test server, or `None` (and a line saying `test` is skipped) when it
/// does not answer. With `LLM_COST_REQUIRE_{upper}=1` (as `.ci/run` sets) it fails the test
/// instead.
fn reachable<C, E: std::fmt::Display>(
    (server, upper): (&str, &str),
    test: &str,
    url: &str,
    connection: Result<C, E>,
) -> Option<C> {
    let hint = format!("set LLM_COST_TEST_{upper} to a server's URL");
    reachable_or(server, upper, test, url, &hint, connection)
}

/// [`reachable`], with `hint` saying how to make the server reachable.
fn reachable_or<C, E: std::fmt::Display>(
    server: &str,
    upper: &str,
    test: &str,
    url: &str,
    hint: &str,
    connection: Result<C, E>,
) -> Option<C> {
    let error = match connection {
        Ok(connection) => return Some(connection),
        Err(error) => error,
    };
    if std::env::var(format!("LLM_COST_REQUIRE_{upper}")).as_deref() == Ok("1") {
        panic!("{server} required but not reachable at {url}: {error}");
    }
    // Straight to the terminal: `cargo test` hides what a passing test prints.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {server} not reachable at {url} ({error}); {hint}"
    );
    None
}

/// A schema of its own on the test server, dropped at the end: the URL that uses it, or `None`
/// (and a line saying the test is skipped) when no server answers. With
/// `LLM_COST_REQUIRE_POSTGRES=1` (as `.ci/run` sets) an unreachable server fails the test.
pub(crate) struct PostgresSchema {
    pub(crate) url: String,
    name: String,
    admin: postgres::Client,
}

/// `url` without its query parameters named in `names`.
pub(crate) fn url_without(url: &str, names: &[&str]) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !names.contains(&p.split_once('=').map_or(*p, |(name, _)| name)))
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

impl PostgresSchema {
    pub(crate) fn create(test: &str) -> Option<PostgresSchema> {
        Self::create_for(test, &postgres_url())
    }

    /// A schema of its own whose URL reaches the server over TLS: `LLM_COST_TEST_POSTGRES_TLS`
    /// (naming the server `localhost`, with `sslmode=verify-full` and `sslrootcert`), else the
    /// loopback server by the name its certificate gives (Debian's own,
    /// `/etc/ssl/certs/ssl-cert-snakeoil.pem`, for `localhost`), which the URL trusts. `None`
    /// (the test skipped) when the server, the certificate file or the server's TLS is missing;
    /// with `LLM_COST_REQUIRE_POSTGRES=1` that fails the test instead.
    pub(crate) fn over_tls(test: &str) -> Option<PostgresSchema> {
        let url = std::env::var("LLM_COST_TEST_POSTGRES_TLS").unwrap_or_else(|_| {
            "postgres://postgres@localhost:5432/test?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ssl-cert-snakeoil.pem".to_owned()
        });
        let mut schema = Self::create_for(test, &url)?;
        let offered = schema
            .admin
            .query_one("SHOW ssl", &[])
            .map(|row| row.get::<_, String>(0) == "on")
            .unwrap_or(false);
        let roots = url
            .split(['?', '&'])
            .find_map(|parameter| parameter.strip_prefix("sslrootcert="))
            .map(std::path::PathBuf::from);
        let ready = match &roots {
            _ if !offered => Err("the server does not offer TLS (ssl = off)".to_owned()),
            Some(path) if !path.exists() => Err(format!("no file {}", path.display())),
            _ => Ok(()),
        };
        let hint =
            "set LLM_COST_TEST_POSTGRES_TLS to a URL with sslmode=verify-full and sslrootcert";
        reachable_or("PostgreSQL over TLS", "POSTGRES", test, &url, hint, ready)?;
        Some(schema)
    }

    /// Whether every open connection of this schema's stores is over TLS (and there is one).
    pub(crate) fn connections_over_tls(&mut self) -> Option<bool> {
        self.admin
            .query_one(
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.application_name = $1",
                &[&self.name],
            )
            .ok()
            .and_then(|row| row.get(0))
    }

    /// A schema of its own, its stores reaching the server at `base`; the schema itself made
    /// over a plain connection to the same server (`base` without its TLS parameters).
    fn create_for(test: &str, base: &str) -> Option<PostgresSchema> {
        // Without its TLS parameters, for a plain connection.
        let plain = url_without(base, &["sslmode", "sslrootcert"]);
        let mut admin = reachable(
            ("PostgreSQL", "POSTGRES"),
            test,
            &plain,
            postgres::Client::connect(&plain, postgres::NoTls),
        )?;
        let name = format!(
            "llm_cost_test_{}_{}",
            test,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let separator = if base.contains('?') { '&' } else { '?' };
        let url =
            format!("{base}{separator}options=-c%20search_path%3D{name}&application_name={name}");
        Some(PostgresSchema { url, name, admin })
    }

    /// How many tables this schema holds.
    pub(crate) fn tables(&mut self) -> i64 {
        self.admin
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
                &[&self.name],
            )
            .and_then(|row| row.try_get(0))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `sql` in this schema, as its administrator (to make a database of an older schema).
    #[allow(dead_code)]
    pub(crate) fn execute(&mut self, sql: &str) {
        self.admin
            .batch_execute(&format!("SET search_path TO {}; {sql}", self.name))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Another program's connection holding the budget account of `key` locked in a
    /// transaction it leaves open, until it runs `COMMIT` or `ROLLBACK` (or is dropped).
    #[allow(dead_code)]
    pub(crate) fn hold_budget_account(&self, key: &str) -> postgres::Client {
        let mut other =
            postgres::Client::connect(&self.url, postgres::NoTls).unwrap_or_else(|e| panic!("{e}"));
        other
            .execute("BEGIN", &[])
            .and_then(|_| {
                other.execute(
                    "SELECT 1 FROM llm_cost_budget_accounts WHERE key = $1 FOR UPDATE",
                    &[&key],
                )
            })
            .unwrap_or_else(|e| panic!("{e}"));
        other
    }

    /// Returns once a connection of this schema's stores waits for a lock another holds; fails
    /// the test when none does within 30 s.
    #[allow(dead_code)]
    pub(crate) fn until_a_write_waits_for_a_lock(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let waiting: i64 = self
                .admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
                    &[&self.name],
                )
                .map_or(0, |row| row.get(0));
            if waiting > 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no write reached the store to wait for the lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Cuts every connection of this schema's stores (a database outage, as they see it).
    pub(crate) fn cut_connections(&mut self) -> u64 {
        self.admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&self.name],
            )
            .map_or(0, |rows| rows.len() as u64)
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        let _ = self
            .admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// Where the Redis tests connect: `LLM_COST_TEST_REDIS`, else the loopback server of this
/// project's machines.
pub(crate) fn redis_url() -> String {
    std::env::var("LLM_COST_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A key prefix of its own on the test Redis server, whose keys are deleted at the end; `None`
/// (and a line saying the test is skipped) when no server answers. With
/// `LLM_COST_REQUIRE_REDIS=1` (as `.ci/run` sets) an unreachable server fails the test.
pub(crate) struct RedisPrefix {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) admin: redis::Connection,
}

impl RedisPrefix {
    pub(crate) fn create(test: &str) -> Option<RedisPrefix> {
        let url = redis_url();
        let admin = redis::Client::open(url.as_str()).and_then(|client| {
            client.get_connection_with_timeout(std::time::Duration::from_secs(5))
        });
        let admin = reachable(("Redis", "REDIS"), test, &url, admin)?;
        let prefix = format!(
            "llm-cost-test-{test}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        Some(RedisPrefix { url, prefix, admin })
    }

    /// Budget options keeping the accounts under this prefix.
    pub(crate) fn options(&self) -> cost_store::BudgetOptions {
        cost_store::BudgetOptions {
            key_prefix: self.prefix.clone(),
            ..cost_store::BudgetOptions::default()
        }
    }

    /// Every key under this prefix, sorted.
    pub(crate) fn keys(&mut self) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut self.admin)
            .unwrap_or_else(|e| panic!("{e}"));
        keys.sort();
        keys
    }

    /// The `spent` and `reserved` of one account, as stored.
    pub(crate) fn figures(&mut self, key: &str) -> (Option<String>, Option<String>) {
        redis::cmd("HMGET")
            .arg(key)
            .arg("spent")
            .arg("reserved")
            .query(&mut self.admin)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Cuts the connections of the accounts under this prefix (a Redis outage, as they see
    /// it): how many.
    pub(crate) fn cut_connections(&mut self) -> u64 {
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut self.admin)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut cut = 0;
        for client in clients.lines() {
            let field = |name: &str| {
                client
                    .split(' ')
                    .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                    .unwrap_or_default()
                    .to_owned()
            };
            if field("name") == self.prefix {
                let _: redis::RedisResult<()> = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(field("id"))
                    .query(&mut self.admin);
                cut += 1;
            }
        }
        cut
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let keys = self.keys();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut self.admin);
        }
    }
}

/// A Redis server of its own that only speaks TLS, on a free loopback port, with a certificate
/// for `127.0.0.1` and `localhost` signed by a certificate authority made for it; stopped at the
/// end. `None` (and a line saying `test` is skipped) when no `redis-server` (built with TLS, as
/// Debian's is) can be started; with `LLM_COST_REQUIRE_REDIS=1` (as `.ci/run` sets) that fails
/// the test instead.
pub(crate) struct TlsRedis {
    /// `rediss://127.0.0.1:{port}/`.
    pub(crate) url: String,
    /// The certificate authority's certificate (PEM).
    pub(crate) ca_file: std::path::PathBuf,
    /// A client certificate the same authority signed, and its key.
    pub(crate) client: cost_store::TlsClientIdentity,
    server: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TlsRedis {
    /// A server that asks clients for no certificate.
    pub(crate) fn start(test: &str) -> Option<TlsRedis> {
        Self::start_with(test, false)
    }

    /// A server that refuses clients without a certificate its authority signed (mutual TLS).
    pub(crate) fn start_requiring_client_certificates(test: &str) -> Option<TlsRedis> {
        Self::start_with(test, true)
    }

    fn start_with(test: &str, require_client_certificates: bool) -> Option<TlsRedis> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let files = write_certificates(dir.path());
        // A port free when picked may be taken before the server binds it: a few tries.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map(|address| address.port())
                .unwrap_or_else(|e| panic!("{e}"));
            match serve_tls(&files, port, require_client_certificates) {
                Ok(server) => {
                    return Some(TlsRedis {
                        url: format!("rediss://127.0.0.1:{port}/"),
                        ca_file: files.ca,
                        client: cost_store::TlsClientIdentity {
                            certificate: files.client_cert,
                            key: files.client_key,
                        },
                        server,
                        _dir: dir,
                    });
                }
                Err(error) => last_error = error,
            }
        }
        reachable_or(
            "Redis",
            "REDIS",
            test,
            "a redis-server of its own",
            "put a redis-server built with TLS on PATH",
            Err::<TlsRedis, _>(last_error),
        )
    }
}

/// A `redis-server` serving TLS only on `port` (asking clients for a certificate its authority
/// signed when `require_client_certificates`), once its port takes connections; an error when
/// it cannot be started or exits (a port taken, a build without TLS) or is not up in 10 s.
fn serve_tls(
    files: &CertificateFiles,
    port: u16,
    require_client_certificates: bool,
) -> Result<std::process::Child, String> {
    let clients = if require_client_certificates {
        "yes"
    } else {
        "no"
    };
    let mut server = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--tls-port",
            &port.to_string(),
            "--tls-auth-clients",
            clients,
        ])
        .arg("--tls-cert-file")
        .arg(&files.cert)
        .arg("--tls-key-file")
        .arg(&files.key)
        .arg("--tls-ca-cert-file")
        .arg(&files.ca)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("redis-server: {e}"))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let exited = server.try_wait().ok().flatten();
        if exited.is_none() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        if exited.is_some() || std::time::Instant::now() > deadline {
            let _ = server.kill();
            let _ = server.wait();
            return Err(format!(
                "redis-server did not serve TLS on port {port} ({exited:?})"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

pub(crate) struct CertificateFiles {
    pub(crate) ca: std::path::PathBuf,
    pub(crate) cert: std::path::PathBuf,
    pub(crate) key: std::path::PathBuf,
    pub(crate) client_cert: std::path::PathBuf,
    pub(crate) client_key: std::path::PathBuf,
}

/// A certificate authority, a server certificate for `127.0.0.1` and `localhost` it signed,
/// and a client certificate it signed, written as PEM files into `dir`.
pub(crate) fn write_certificates(dir: &std::path::Path) -> CertificateFiles {
    let fail = |e: rcgen::Error| -> ! { panic!("{e}") };
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "llm-cost test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail(e));
    let ca_cert = ca_params.self_signed(&ca_key).unwrap_or_else(|e| fail(e));
    let server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap_or_else(|e| fail(e));
    let server_key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail(e));
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .unwrap_or_else(|e| fail(e));
    let mut client_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "llm-cost test client");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail(e));
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .unwrap_or_else(|e| fail(e));
    let files = CertificateFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    };
    for (path, pem) in [
        (&files.ca, ca_cert.pem()),
        (&files.cert, server_cert.pem()),
        (&files.key, server_key.serialize_pem()),
        (&files.client_cert, client_cert.pem()),
        (&files.client_key, client_key.serialize_pem()),
    ] {
        std::fs::write(path, pem).unwrap_or_else(|e| panic!("{e}"));
    }
    files
}

/// A TCP proxy on loopback to the server of a `postgres://` or `redis://` URL (without a port,
/// PostgreSQL's): it passes bytes both ways until
/// frozen; frozen, it takes what either side sends and passes nothing on, as a server that
/// accepted a request and never answers (a stuck process, a connection pooler holding requests
/// while its database is down); thawed, it passes on what it held. Armed with
/// [`FreezingProxy::lose_the_answer_to_the_next_commit`] (PostgreSQL's `COMMIT`) or
/// [`FreezingProxy::lose_the_answer_to_the_next_exec`] (Redis's `EXEC`), it passes that request
/// on, then drops the server's answer and cuts that connection: the transaction lands, the
/// client never learns it did.
#[allow(dead_code)]
pub(crate) struct FreezingProxy {
    /// The URL, through the proxy.
    pub(crate) url: String,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    frozen: std::sync::atomic::AtomicBool,
    /// The request after which a connection is cut, once.
    cut_after: std::sync::Mutex<Option<&'static [u8]>>,
}

#[allow(dead_code)]
impl FreezingProxy {
    pub(crate) fn to(url: &str) -> FreezingProxy {
        use std::net::{TcpListener, TcpStream};
        let (scheme, rest) = url
            .split_once("://")
            .unwrap_or_else(|| panic!("no scheme: {url}"));
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let (user, server) = match authority.rsplit_once('@') {
            Some((user, server)) => (format!("{user}@"), server.to_owned()),
            None => (String::new(), authority.to_owned()),
        };
        let upstream = if server.contains(':') {
            server
        } else {
            format!("{server}:5432")
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        let state = Arc::new(ProxyState::default());
        let proxy_state = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let connection = Connection {
                    state: Arc::clone(&proxy_state),
                    cut: Arc::default(),
                };
                let streams = (|| {
                    Some([
                        (client.try_clone().ok()?, server.try_clone().ok()?, true),
                        (server.try_clone().ok()?, client.try_clone().ok()?, false),
                    ])
                })();
                for (from, to, upward) in streams.into_iter().flatten() {
                    let connection = connection.clone();
                    std::thread::spawn(move || connection.pump(from, to, upward));
                }
            }
        });
        FreezingProxy {
            url: format!("{scheme}://{user}127.0.0.1:{port}{path}"),
            state,
        }
    }

    pub(crate) fn freeze(&self) {
        self.state
            .frozen
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn thaw(&self) {
        self.state
            .frozen
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn lose_the_answer_to_the_next_commit(&self) {
        self.lose_the_answer_to_the_next(b"COMMIT");
    }

    pub(crate) fn lose_the_answer_to_the_next_exec(&self) {
        self.lose_the_answer_to_the_next(b"EXEC");
    }

    fn lose_the_answer_to_the_next(&self, request: &'static [u8]) {
        *self
            .state
            .cut_after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(request);
    }
}

/// One connection through the proxy.
#[derive(Clone)]
struct Connection {
    state: Arc<ProxyState>,
    /// Cut after a commit: the server's answers are dropped.
    cut: Arc<std::sync::atomic::AtomicBool>,
}

impl Connection {
    /// Whether `request`, sent up, holds the request armed to be cut after (disarming it).
    fn cuts_after(&self, request: &[u8]) -> bool {
        let mut cut_after = self
            .state
            .cut_after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let found =
            cut_after.is_some_and(|word| request.windows(word.len()).any(|bytes| bytes == word));
        if found {
            *cut_after = None;
        }
        found
    }

    /// Copies `from` to `to` (`upward`: the client's side to the server) until either closes,
    /// holding what it read while frozen.
    fn pump(&self, mut from: std::net::TcpStream, mut to: std::net::TcpStream, upward: bool) {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering::SeqCst;
        let mut buffer = [0_u8; 64 * 1024];
        loop {
            let read = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            while self.state.frozen.load(SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if !upward && self.cut.load(SeqCst) {
                continue;
            }
            // Marked cut before the request is passed on: a quick server's answer would
            // otherwise pass the other way first.
            let cut_after = upward && self.cuts_after(&buffer[..read]);
            if cut_after {
                self.cut.store(true, SeqCst);
            }
            if to.write_all(&buffer[..read]).is_err() {
                break;
            }
            if cut_after {
                // Time for the server to commit, then the connection is cut both ways.
                std::thread::sleep(std::time::Duration::from_millis(300));
                let _ = from.shutdown(std::net::Shutdown::Both);
                let _ = to.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    }
}
