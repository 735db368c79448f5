//! rill-tracker in process for tests: [`TestTracker::start`] binds port 0 on loopback, runs
//! [`rill_tracker::run`] on a tokio runtime in a background thread, waits until `/health`
//! answers, and shuts the tracker down gracefully when dropped.
//!
//! [`tracker_bin`] builds the `rill-tracker` binary for tests of the command itself.
//!
//! Private mode: [`TestDb`] makes a SQLite database in a temp dir, or a schema on the
//! PostgreSQL server of [`POSTGRES_ENV`], with users and torrents (blocking calls over
//! [`rill_tracker::db::Db`]); [`TestTracker::sync`] makes the tracker
//! write its accounting and reload the registry, and waits for it.
//!
//! Also a blocking HTTP client ([`TestTracker::get`], reqwest underneath) and a BEP 15
//! client over a std UDP socket ([`UdpClient`]). Waits are bounded by socket timeouts, not
//! sleeps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::thread::JoinHandle;
use std::time::Duration;

use rill_common::InfoHash;
use rill_common::tracker::udp::{Family, Request, Response};
use rill_tracker::db::{Db, ScratchSchema, UserStats};
use rill_tracker::private::{ClientPrefix, Passkey};
use rill_tracker::{Config, Handle, Listeners, Tracker, TrackerError};
use tokio::sync::oneshot;

/// How long a test waits for one reply before failing (a bound, not a delay).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// A tracker running in this process on loopback ports chosen by the system.
pub struct TestTracker {
    /// `http://IP:PORT` (no path).
    pub http_url: String,
    /// The HTTP listener's address.
    pub http_addr: SocketAddr,
    /// The UDP socket's address.
    pub udp_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), TrackerError>>>,
    handle: Option<Handle>,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// An HTTP reply as the test sees it.
#[derive(Clone, Debug)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The body as (lossy) text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl TestTracker {
    /// Starts a tracker with `config` on 127.0.0.1 (HTTP and UDP, ports chosen by the
    /// system; the listen addresses in `config` are ignored). Panics if it does not come up.
    pub fn start(config: Config) -> Self {
        Self::start_on(config, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Like [`TestTracker::start`], on `ip` (`::1`, or `::` for a dual-stack socket).
    pub fn start_on(config: Config, ip: IpAddr) -> Self {
        let http = TcpListener::bind((ip, 0)).expect("bind the HTTP listener");
        let udp = UdpSocket::bind((ip, 0)).expect("bind the UDP socket");
        let http_addr = http.local_addr().expect("HTTP listener address");
        let udp_addr = udp.local_addr().expect("UDP socket address");
        let listeners = Listeners {
            http: Some(http),
            udp: Some(udp),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel::<Handle>();
        let thread = std::thread::Builder::new()
            .name("rill-tracker".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime for the tracker");
                runtime.block_on(async move {
                    let tracker = Tracker::open(config).await?;
                    let _ = handle_tx.send(tracker.handle());
                    tracker
                        .serve(listeners, async {
                            let _ = stopped.await;
                        })
                        .await
                })
            })
            .expect("spawn the tracker thread");
        // Sent once opened; a failed open drops the sender, and the error comes out below.
        let handle = handle_rx.recv().ok();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime for the test client");
        let client = reqwest::Client::builder()
            .timeout(REPLY_TIMEOUT)
            .build()
            .expect("reqwest client");
        let host = match http_addr.ip() {
            IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
            IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let mut tracker = TestTracker {
            http_url: format!("http://{host}:{}", http_addr.port()),
            http_addr,
            udp_addr,
            stop: Some(stop),
            thread: Some(thread),
            handle,
            client,
            runtime,
        };
        // The listener is bound already, so this connects at once and is answered as soon
        // as the server runs; if `run` failed, the listener is closed and this fails.
        match tracker.try_get("/health", &[]) {
            Ok(reply) if reply.status == 200 && reply.body == b"ok" => tracker,
            other => {
                let ended = tracker.thread.take().map(JoinHandle::join);
                panic!(
                    "rill-tracker did not come up: /health gave {other:?}; run ended with {ended:?}"
                )
            }
        }
    }

    /// `http://IP:PORT/announce`.
    pub fn announce_url(&self) -> String {
        format!("{}/announce", self.http_url)
    }

    /// `http://IP:PORT/scrape`.
    pub fn scrape_url(&self) -> String {
        format!("{}/scrape", self.http_url)
    }

    /// `udp://IP:PORT/announce` (for 127.0.0.1 or `[::1]`).
    pub fn udp_announce_url(&self) -> String {
        let ip = self.udp_addr.ip();
        let host = match ip {
            IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
            IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        format!("udp://{host}:{}/announce", self.udp_addr.port())
    }

    /// `GET path_and_query` (e.g. `/announce?info_hash=...`); panics on a transport error.
    pub fn get(&self, path_and_query: &str) -> HttpReply {
        self.get_with_headers(path_and_query, &[])
    }

    /// `GET` with extra request headers; panics on a transport error.
    pub fn get_with_headers(&self, path_and_query: &str, headers: &[(&str, &str)]) -> HttpReply {
        self.try_get(path_and_query, headers)
            .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"))
    }

    /// `GET` of a whole URL (another host form of this tracker, say); panics on a transport
    /// error.
    pub fn get_url(&self, url: &str) -> HttpReply {
        self.fetch(url, &[])
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// `POST path` with a JSON `body` and extra headers; panics on a transport error.
    pub fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &str) -> HttpReply {
        let mut request = self
            .client
            .post(format!("{}{path}", self.http_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    fn try_get(&self, path_and_query: &str, headers: &[(&str, &str)]) -> Result<HttpReply, String> {
        self.fetch(&format!("{}{path_and_query}", self.http_url), headers)
    }

    fn fetch(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpReply, String> {
        let mut request = self.client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request)
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Result<HttpReply, String> {
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| format!("{e:?}"))?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .bytes()
                .await
                .map_err(|e| format!("{e:?}"))?
                .to_vec();
            Ok(HttpReply {
                status,
                content_type,
                body,
            })
        })
    }

    /// Makes the tracker write its pending accounting and reload users and torrents from
    /// the database, and waits until it has (private mode; returns at once in public mode).
    pub fn sync(&self) {
        if let Some(handle) = &self.handle {
            self.runtime.block_on(handle.sync());
        }
    }

    /// `http://IP:PORT/announce/<passkey>`.
    pub fn private_announce_url(&self, passkey: &Passkey) -> String {
        format!("{}/announce/{}", self.http_url, passkey.as_str())
    }

    /// `udp://IP:PORT/announce/<passkey>` (BEP 41).
    pub fn private_udp_announce_url(&self, passkey: &Passkey) -> String {
        format!("{}/{}", self.udp_announce_url(), passkey.as_str())
    }

    /// A UDP client talking to this tracker from a new loopback socket of the tracker's family.
    pub fn udp_client(&self) -> UdpClient {
        UdpClient::new(self.udp_addr)
    }

    /// Stops the tracker gracefully and returns what [`rill_tracker::run`] returned.
    pub fn stop(mut self) -> Result<(), TrackerError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), TrackerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => panic!("the tracker thread panicked"),
        }
    }
}

impl Drop for TestTracker {
    fn drop(&mut self) {
        if let Err(e) = self.shut_down() {
            eprintln!("rill-tracker stopped with an error: {e}");
        }
    }
}

/// A BEP 15 client on a std UDP socket connected to the tracker; receives time out after
/// [`REPLY_TIMEOUT`].
pub struct UdpClient {
    socket: UdpSocket,
    family: Family,
}

impl UdpClient {
    /// A socket on the loopback address of `tracker`'s family, connected to it.
    pub fn new(tracker: SocketAddr) -> Self {
        let local: IpAddr = match tracker {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        let target = match tracker.ip() {
            ip if ip.is_unspecified() => SocketAddr::new(local, tracker.port()),
            _ => tracker,
        };
        let socket = UdpSocket::bind((local, 0)).expect("bind a UDP client socket");
        socket.connect(target).expect("connect the UDP client");
        socket
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("set a read timeout");
        UdpClient {
            socket,
            family: Family::of(&target),
        }
    }

    /// This client's own address (as the tracker sees it).
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }

    /// Sends raw bytes.
    pub fn send_raw(&self, packet: &[u8]) {
        self.socket.send(packet).expect("send a datagram");
    }

    /// Receives one datagram; panics on timeout.
    pub fn recv_raw(&self) -> Vec<u8> {
        let mut buf = vec![0; 4096];
        let len = self
            .socket
            .recv(&mut buf)
            .expect("a reply within the timeout");
        buf.truncate(len);
        buf
    }

    /// Sends a request and decodes the next reply.
    pub fn request(&self, request: &Request) -> Response {
        self.send_raw(&request.encode());
        let reply = self.recv_raw();
        Response::decode(&reply, self.family).expect("a valid BEP 15 reply")
    }

    /// Connects and returns the connection id.
    pub fn connect(&self, transaction_id: u32) -> u64 {
        match self.request(&Request::Connect { transaction_id }) {
            Response::Connect {
                transaction_id: t,
                connection_id,
            } if t == transaction_id => connection_id,
            other => panic!("connect answered with {other:?}"),
        }
    }
}

/// The path of a freshly built `rill-tracker` binary (built once per test process, like
/// [`crate::rill_bin`]). Panics if the build fails.
pub fn tracker_bin() -> std::path::PathBuf {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let root = crate::workspace_root();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "rill-tracker", "--bin", "rill-tracker"])
            .current_dir(&root)
            .status()
            .unwrap_or_else(|err| panic!("running cargo build for rill-tracker: {err}"));
        assert!(
            status.success(),
            "cargo build -p rill-tracker failed: {status}"
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), |dir| root.join(dir));
        target
            .join("debug")
            .join(format!("rill-tracker{}", std::env::consts::EXE_SUFFIX))
    })
    .clone()
}

/// The environment variable naming the PostgreSQL server for tests
/// (`postgres://USER:PASSWORD@HOST:PORT/DB`, a role that may create schemas).
pub const POSTGRES_ENV: &str = "RILL_TEST_POSTGRES";

/// A private-mode database for tests, driven through blocking calls: a SQLite file in its
/// own temp dir ([`TestDb::new`]), or a fresh schema on the PostgreSQL server of
/// [`POSTGRES_ENV`] ([`TestDb::postgres`], dropped with the `TestDb`). Passkeys are made
/// from the user's name, so tests are reproducible.
pub struct TestDb {
    /// The URL to put into the tracker's `database` (`sqlite://…` or `postgres://…`).
    pub url: String,
    /// `"sqlite"` or `"postgres"`.
    pub kind: &'static str,
    db: Db,
    runtime: tokio::runtime::Runtime,
    scratch: Option<ScratchSchema>,
    dir: tempfile::TempDir,
}

/// Which database a test runs on (see [`TestDb::on`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// A schema on the PostgreSQL server of [`POSTGRES_ENV`].
    Postgres,
}

impl TestDb {
    /// A new, migrated SQLite database.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for the database");
        let url = format!("sqlite://{}", dir.path().join("tracker.db").display());
        Self::open(url, "sqlite", None, dir)
    }

    /// A new, migrated schema on the PostgreSQL server of [`POSTGRES_ENV`]; `None` (the
    /// test is skipped, with a notice) when the variable is unset, unless `CI` is set, in
    /// which case this panics, as it does when the server cannot be reached.
    pub fn postgres() -> Option<Self> {
        let Ok(server) = std::env::var(POSTGRES_ENV) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{POSTGRES_ENV} is not set but CI is: the PostgreSQL tests must run in CI \
                 (.ci/run starts a server and sets {POSTGRES_ENV}=postgres://…)"
            );
            eprintln!(
                "notice: PostgreSQL test skipped: set {POSTGRES_ENV}=postgres://USER:PASSWORD@HOST:PORT/DB to run it"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("a temp dir for the test");
        let runtime = current_thread_runtime();
        let scratch = runtime
            .block_on(ScratchSchema::create(&server))
            .unwrap_or_else(|e| panic!("cannot create a schema on {POSTGRES_ENV}: {e}"));
        drop(runtime);
        let url = scratch.url().to_owned();
        Some(Self::open(url, "postgres", Some(scratch), dir))
    }

    /// [`TestDb::new`] or [`TestDb::postgres`].
    pub fn on(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::new()),
            Backend::Postgres => Self::postgres(),
        }
    }

    fn open(
        url: String,
        kind: &'static str,
        scratch: Option<ScratchSchema>,
        dir: tempfile::TempDir,
    ) -> Self {
        let runtime = current_thread_runtime();
        let db = runtime
            .block_on(Db::open(&url))
            .unwrap_or_else(|e| panic!("open the test database ({kind}): {e}"));
        TestDb {
            url,
            kind,
            db,
            runtime,
            scratch,
            dir,
        }
    }

    /// The path of the SQLite database file (for PostgreSQL, a path in the test's temp dir
    /// that does not exist).
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("tracker.db")
    }

    /// The test's temp dir (config files).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A private-mode configuration on this database (flushes every second).
    pub fn config(&self) -> Config {
        let mut config = Config::default();
        config.mode = rill_tracker::config::Mode::Private;
        config.database = Some(self.url.clone());
        config.private.flush_interval_secs = 1;
        config
    }

    /// The passkey `add_user(name)` gives: the name's letters and digits, padded with digits.
    pub fn passkey_of(name: &str) -> Passkey {
        let mut text: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
        text.truncate(16);
        while text.len() < Passkey::LEN {
            text.push(char::from(b'0' + (text.len() % 10) as u8));
        }
        Passkey::parse(&text).expect("a valid passkey")
    }

    /// Adds an enabled user and returns its passkey.
    pub fn add_user(&self, name: &str) -> Passkey {
        let passkey = Self::passkey_of(name);
        self.runtime
            .block_on(self.db.add_user(name, &passkey))
            .expect("add a user");
        passkey
    }

    /// Disables a user.
    pub fn disable_user(&self, name: &str, reason: &str) {
        self.runtime
            .block_on(self.db.disable_user(name, reason))
            .expect("disable a user");
    }

    /// Registers a torrent.
    pub fn add_torrent(&self, info_hash: InfoHash, freeleech: bool) {
        self.runtime
            .block_on(self.db.add_torrent(&info_hash, freeleech))
            .expect("register a torrent");
    }

    /// Adds a client prefix to the allow-list.
    pub fn allow_client(&self, prefix: &str) {
        let prefix = ClientPrefix::parse(prefix).expect("a valid prefix");
        self.runtime
            .block_on(self.db.allow_client(&prefix))
            .expect("allow a client");
    }

    /// A user's credited totals.
    pub fn stats(&self, name: &str) -> UserStats {
        self.runtime
            .block_on(self.db.user_stats(name))
            .expect("read a user's totals")
    }

    /// How many users there are.
    pub fn user_count(&self) -> usize {
        self.runtime
            .block_on(self.db.list_users())
            .expect("list users")
            .len()
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.runtime.block_on(self.db.close());
        if let Some(scratch) = self.scratch.take()
            && let Err(e) = self.runtime.block_on(scratch.drop_schema())
        {
            eprintln!("cannot drop the test schema: {e}");
        }
    }
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime for the test database")
}
