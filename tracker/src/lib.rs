//! rill-tracker: Rill's HTTP and UDP BitTorrent tracker.
//!
//! - [`admin`]: the admin CLI commands and the JSON REST admin API (private mode).
//! - [`config`]: the TOML configuration ([`Config`]), `--print-config`'s commented default.
//! - [`run`]: serves on listeners the caller bound (tests bind port 0) until a shutdown
//!   future completes, then stops gracefully; [`Tracker`] splits it in two (open, then
//!   serve) for callers that want a [`Handle`] or the database first.
//! - `service` (internal): the protocol-neutral core both front ends call.
//! - `http/` (axum) and `udp/` (BEP 15): thin shells that parse, call the service, encode.
//! - `store`: the swarm store sharded over locks, swept by a purge timer.
//! - [`swarm`]: the swarm store (pure): peers per torrent, replies, expiry.
//! - [`db`]: persistence (sqlx): [`db::Db`], the saved swarms and private mode's tables.
//! - [`private`]: private mode (pure): passkeys, users, registered torrents, rate limit, accounting.
//! - `flush`: the persistence shell: swarm saves (both modes), private mode's batches and
//!   registry reloads, the drain.
//!
//! Shutdown order: the shutdown future completes; HTTP finishes the requests in flight, UDP
//! and the timers stop; only then are the accounting and the swarms written to the
//! database, so that no announce is credited or seen after the last write.

pub mod admin;
pub mod config;
pub mod db;
mod flush;
mod http;
pub mod private;
mod service;
mod store;
pub mod swarm;
mod udp;

use std::future::Future;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

pub use config::{Config, ConfigError};
pub use flush::Handle;

/// The sockets to serve on, bound by the caller: `None` leaves that protocol off.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The HTTP listener.
    pub http: Option<TcpListener>,
    /// The UDP socket.
    pub udp: Option<UdpSocket>,
}

impl Listeners {
    /// Binds the addresses `config` enables.
    pub fn bind(config: &Config) -> Result<Self, TrackerError> {
        let bind_error = |protocol, addr, error| TrackerError::Bind {
            protocol,
            addr,
            error,
        };
        let http = if config.http.enabled {
            let addr = config.http.listen;
            Some(TcpListener::bind(addr).map_err(|e| bind_error("HTTP", addr, e))?)
        } else {
            None
        };
        let udp = if config.udp.enabled {
            let addr = config.udp.listen;
            Some(UdpSocket::bind(addr).map_err(|e| bind_error("UDP", addr, e))?)
        } else {
            None
        };
        Ok(Listeners { http, udp })
    }
}

/// Why the tracker cannot start or stopped with an error.
#[derive(Debug, Error)]
pub enum TrackerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listen address cannot be bound.
    #[error("cannot listen for {protocol} on {addr}: {error}")]
    Bind {
        /// "HTTP" or "UDP".
        protocol: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why (in the message, not a `source`, so that it is printed once).
        error: std::io::Error,
    },
    /// Neither HTTP nor UDP is enabled.
    #[error("nothing to serve: both HTTP and UDP are disabled")]
    NothingToServe,
    /// The database cannot be opened (or migrated).
    #[error("cannot open the database {url}: {error}")]
    OpenDb {
        /// The URL, without a password.
        url: String,
        /// Why (in the message, not a `source`, so that it is printed once).
        error: db::DbError,
    },
    /// The database cannot be loaded.
    #[error("{0}")]
    Db(db::DbError),
    /// The accounting could not be written at shutdown.
    #[error("accounting lost at shutdown: {0}")]
    Drain(String),
    /// A socket failed while serving.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The I/O error (in the message, not a `source`).
        error: std::io::Error,
    },
}

fn io_error(what: &'static str) -> impl FnOnce(std::io::Error) -> TrackerError {
    move |error| TrackerError::Io { what, error }
}

/// Serves `listeners` until `shutdown` completes, then stops: HTTP finishes the requests in
/// flight (axum's graceful shutdown), UDP and the timers end, private mode's accounting is
/// drained to the database, the swarms saved. Opens (and migrates) the database first: see
/// [`Tracker::open`].
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), TrackerError> {
    Tracker::open(config)
        .await?
        .serve(listeners, shutdown)
        .await
}

/// A tracker loaded and ready to serve: [`run`] in two steps.
#[derive(Debug)]
pub struct Tracker {
    service: Arc<service::Service>,
    db: Option<db::Db>,
    handle: Handle,
    routes: Option<axum::Router>,
}

impl Tracker {
    /// Validates `config`, opens and migrates the database (if any: private mode, or
    /// `database` set to a URL), loads the saved swarms and private mode's users, torrents
    /// and baselines.
    pub async fn open(config: Config) -> Result<Self, TrackerError> {
        config.validate()?;
        let loaded = flush::load(&config).await?;
        let active = loaded.db.is_some();
        let admin_token = config.admin_token.clone();
        let service = Arc::new(service::Service::with_private(config, loaded.private));
        flush::restore_swarms(&service, loaded.swarms);
        let handle = Handle::new(active);
        // The admin REST API under /admin, when a token is configured (validation made sure
        // there is a database then).
        let routes = match (&admin_token, &loaded.db) {
            (Some(token), Some(db)) => Some(axum::Router::new().nest(
                "/admin",
                admin::api::router(db.clone(), token.clone(), handle.change_notifier()),
            )),
            _ => None,
        };
        Ok(Tracker {
            service,
            db: loaded.db,
            handle,
            routes,
        })
    }

    /// Asks for (and waits on) flushes and registry reloads.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The database, if one is open (for the admin API).
    pub fn db(&self) -> Option<&db::Db> {
        self.db.as_ref()
    }

    /// Extra routes served by the HTTP listener next to the tracker's (and the admin API's,
    /// when `admin_token` is set): merged into the router, so their paths must not clash
    /// with `/announce`, `/scrape`, `/health`, `/stats`, `/metrics`, `/admin`.
    pub fn with_routes(mut self, routes: axum::Router) -> Self {
        self.routes = Some(match self.routes.take() {
            Some(existing) => existing.merge(routes),
            None => routes,
        });
        self
    }

    /// Serves `listeners` until `shutdown` completes (see [`run`]).
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), TrackerError> {
        if listeners.http.is_none() && listeners.udp.is_none() {
            return Err(TrackerError::NothingToServe);
        }
        let Tracker {
            service,
            db,
            handle,
            routes,
        } = self;
        let result = serve(&service, listeners, routes, db.as_ref(), &handle, shutdown).await;
        let drained = match &db {
            Some(db) => flush::drain(&service, db, &handle).await,
            None => Ok(()),
        };
        result.and(drained)
    }
}

async fn serve(
    service: &Arc<service::Service>,
    listeners: Listeners,
    routes: Option<axum::Router>,
    db: Option<&db::Db>,
    handle: &Handle,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), TrackerError> {
    let purge_every = service.config().swarm.purge_interval();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks: JoinSet<Result<(), TrackerError>> = JoinSet::new();

    if let Some(listener) = listeners.http {
        listener
            .set_nonblocking(true)
            .map_err(io_error("HTTP listener"))?;
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(io_error("HTTP listener"))?;
        if let Ok(addr) = listener.local_addr() {
            info!("HTTP tracker listening on http://{addr}/announce");
        }
        let mut router = http::router(Arc::clone(service));
        if let Some(routes) = routes {
            router = router.merge(routes);
        }
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let stop = stopped(stop_rx.clone());
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .map_err(io_error("HTTP server"))
        });
    }
    if let Some(socket) = listeners.udp {
        socket
            .set_nonblocking(true)
            .map_err(io_error("UDP socket"))?;
        let socket = tokio::net::UdpSocket::from_std(socket).map_err(io_error("UDP socket"))?;
        if let Ok(addr) = socket.local_addr() {
            info!("UDP tracker listening on udp://{addr}/announce");
        }
        udp::spawn(socket, Arc::clone(service), stop_rx.clone(), &mut tasks);
    }
    {
        let service = Arc::clone(service);
        let stop = stopped(stop_rx.clone());
        tasks.spawn(async move {
            let mut timer = tokio::time::interval(purge_every);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => return Ok(()),
                    _ = timer.tick() => service.purge(Instant::now()),
                }
            }
        });
    }
    if let Some(db) = db {
        let stop = stopped(stop_rx.clone());
        tasks.spawn(flush::run(
            Arc::clone(service),
            db.clone(),
            handle.clone(),
            stop,
        ));
    }

    // Serve until asked to stop, or until a server ends on its own (an error).
    let mut result = Ok(());
    tokio::select! {
        () = shutdown => info!("shutting down"),
        Some(ended) = tasks.join_next() => {
            result = flatten(ended);
            warn!("a server stopped early; shutting down");
        }
    }
    let _ = stop_tx.send(true);
    while let Some(ended) = tasks.join_next().await {
        if result.is_ok() {
            result = flatten(ended);
        }
    }
    result
}

/// Completes once the stop flag is set (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn flatten(
    ended: Result<Result<(), TrackerError>, tokio::task::JoinError>,
) -> Result<(), TrackerError> {
    match ended {
        Ok(result) => result,
        Err(e) => Err(TrackerError::Io {
            what: "tracker task",
            error: std::io::Error::other(e.to_string()),
        }),
    }
}
