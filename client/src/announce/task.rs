//! The per-torrent announce shell: owns a [`Schedule`], reads the clock, talks to the
//! trackers, and hands every peer it learns to the torrent.
//!
//! Invariants:
//! - A tracker that fails never ends the task: it backs off and the schedule moves on.
//! - URLs with a scheme other than http, https and udp, and malformed URLs, are skipped with
//!   a warning when the task starts.
//! - [`Announcer::stop`] returns within its timeout (plus a little slack): `stopped` goes to
//!   every tracker that got `started`, in parallel, until the timeout; then the task ends.
//! - Dropping the [`Announcer`] without `stop` ends the task without `stopped`.
//! - Errors shown in [`TrackerStatus`] name the tracker by scheme, host and port only: the
//!   path and query may hold a passkey.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use rill_common::{InfoHash, PeerId};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::http::{HttpClient, HttpConfig};
use super::schedule::{Answer, Job, Schedule, ScheduleConfig, TrackerKey};
use super::udp::{UdpConfig, UdpTracker, UdpUrl};
use super::{AnnounceError, Reply, Request, Scheme, display_url};

/// Extra time [`Announcer::stop`] grants the task past its timeout before aborting it.
const STOP_SLACK: Duration = Duration::from_millis(200);

/// What one torrent announces, and to whom.
#[derive(Clone, Debug)]
pub struct AnnounceConfig {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we listen on.
    pub port: u16,
    /// Our BEP 7 `key` (random, the same for the session).
    pub key: u32,
    /// Peers wanted per announce; `None` for the tracker's default.
    pub numwant: Option<u32>,
    /// The trackers, by BEP 12 tier (`announce-list`, or `[[announce]]`).
    pub tiers: Vec<Vec<String>>,
    /// Intervals and backoff.
    pub schedule: ScheduleConfig,
    /// UDP retransmission timing.
    pub udp: UdpConfig,
    /// The HTTP client to share; `None` for the process-wide default one.
    pub http: Option<HttpClient>,
}

impl AnnounceConfig {
    /// A config with a random key, 50 peers wanted, and default timings.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16, tiers: Vec<Vec<String>>) -> Self {
        AnnounceConfig {
            info_hash,
            peer_id,
            port,
            key: rand::random(),
            numwant: Some(50),
            tiers,
            schedule: ScheduleConfig::default(),
            udp: UdpConfig::default(),
            http: None,
        }
    }
}

/// The torrent's transfer counters, as announced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes uploaded this session.
    pub uploaded: u64,
    /// Bytes downloaded this session.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
}

/// What the progress display shows about the trackers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackerStatus {
    /// The tracker that last answered (scheme, host and port).
    pub tracker: Option<String>,
    /// Seeders, from the last reply or scrape.
    pub seeders: Option<u32>,
    /// Leechers, from the last reply or scrape.
    pub leechers: Option<u32>,
    /// Completed downloads, from the last scrape.
    pub completed: Option<u32>,
    /// The last failure (cleared by the next success).
    pub last_error: Option<String>,
    /// The last `warning message` (cleared by a reply without one).
    pub warning: Option<String>,
    /// When the next regular announce is due.
    pub next_announce: Option<std::time::Instant>,
    /// Successful announces so far.
    pub announces: u64,
    /// Peers received so far (with repeats).
    pub peers_received: u64,
}

#[derive(Debug)]
enum Command {
    Completed,
    Stop(Instant),
}

/// A running announce task; see [`spawn`].
#[derive(Debug)]
pub struct Announcer {
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<TrackerStatus>,
    task: JoinHandle<()>,
}

/// Starts announcing `config`'s torrent: `started` at once, then regular announces, reading
/// the counters from `progress`; every reply's peers go to `peers` (keep draining it: a full
/// channel holds the announcer up). Needs a tokio runtime.
pub fn spawn(
    config: AnnounceConfig,
    progress: watch::Receiver<Progress>,
    peers: mpsc::Sender<Vec<SocketAddr>>,
) -> Announcer {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (status_tx, status) = watch::channel(TrackerStatus::default());
    let tiers = usable_tiers(config.tiers);
    let now = Instant::now().into_std();
    let schedule = Schedule::new(tiers, config.schedule, &mut rand::rng(), now);
    let http = config.http.map_or_else(shared_http_client, Ok);
    let shell = Shell {
        schedule,
        transports: Transports {
            http,
            udp_config: config.udp,
            udp: HashMap::new(),
        },
        status: status_tx,
        progress,
        peers,
        info_hash: config.info_hash,
        peer_id: config.peer_id,
        port: config.port,
        key: config.key,
        numwant: config.numwant,
    };
    let task = tokio::spawn(shell.run(command_rx));
    Announcer {
        commands,
        status,
        task,
    }
}

impl Announcer {
    /// The download completed: `completed` is announced at once (once). Not for a torrent
    /// that started complete.
    pub fn completed(&self) {
        let _ = self.commands.send(Command::Completed);
    }

    /// The trackers' state for the display.
    pub fn status(&self) -> TrackerStatus {
        self.status.borrow().clone()
    }

    /// A receiver of every status change.
    pub fn watch_status(&self) -> watch::Receiver<TrackerStatus> {
        self.status.clone()
    }

    /// Sends `stopped` to the trackers that got `started`, for at most `timeout`, and ends
    /// the task.
    pub async fn stop(self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let _ = self.commands.send(Command::Stop(deadline));
        let mut task = self.task;
        if tokio::time::timeout_at(deadline + STOP_SLACK, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// The process-wide HTTP client, built once with default limits (or why it could not be).
fn shared_http_client() -> Result<HttpClient, String> {
    static CLIENT: OnceLock<Result<HttpClient, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| HttpClient::new(&HttpConfig::default()).map_err(|e| e.to_string()))
        .clone()
}

/// The tiers without the trackers we cannot talk to (each skipped with a warning).
fn usable_tiers(tiers: Vec<Vec<String>>) -> Vec<Vec<String>> {
    tiers
        .into_iter()
        .map(|tier| {
            tier.into_iter()
                .filter(|url| match check_url(url) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!("skipping tracker {}: {e}", display_url(url));
                        false
                    }
                })
                .collect()
        })
        .collect()
}

fn check_url(url: &str) -> Result<(), AnnounceError> {
    match Scheme::of(url) {
        Some(Scheme::Http) => {
            reqwest::Url::parse(url)
                .map(drop)
                .map_err(|e| AnnounceError::BadUrl {
                    url: display_url(url),
                    reason: e.to_string(),
                })
        }
        Some(Scheme::Udp) => UdpUrl::parse(url).map(drop),
        None => Err(AnnounceError::UnsupportedScheme(display_url(url))),
    }
}

/// The transports, one UDP client per UDP tracker (it keeps the connection id).
struct Transports {
    /// The HTTP client, or why there is none (TLS could not start): HTTP trackers then fail
    /// with that reason and UDP ones still work.
    http: Result<HttpClient, String>,
    udp_config: UdpConfig,
    udp: HashMap<TrackerKey, UdpTracker>,
}

impl Transports {
    fn http(&self) -> Result<&HttpClient, AnnounceError> {
        self.http
            .as_ref()
            .map_err(|e| AnnounceError::Network(format!("no HTTP client: {e}")))
    }

    async fn announce(
        &mut self,
        key: TrackerKey,
        url: &str,
        request: &Request,
    ) -> Result<Reply, AnnounceError> {
        match Scheme::of(url) {
            Some(Scheme::Http) => self.http()?.announce(url, request).await,
            Some(Scheme::Udp) => {
                let tracker = match self.udp.entry(key) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => {
                        entry.insert(UdpTracker::open(url, self.udp_config.clone()).await?)
                    }
                };
                let result = tracker.announce(request).await;
                if let Err(AnnounceError::Network(_)) = result {
                    // Resolve the name again next time.
                    self.udp.remove(&key);
                }
                result
            }
            None => Err(AnnounceError::UnsupportedScheme(display_url(url))),
        }
    }
}

/// The task's state.
struct Shell {
    schedule: Schedule,
    transports: Transports,
    status: watch::Sender<TrackerStatus>,
    progress: watch::Receiver<Progress>,
    peers: mpsc::Sender<Vec<SocketAddr>>,
    info_hash: InfoHash,
    peer_id: PeerId,
    port: u16,
    key: u32,
    numwant: Option<u32>,
}

impl Shell {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let deadline = loop {
            let now = Instant::now();
            if let Some(job) = self.schedule.poll(now.into_std()) {
                let request = self.request(&job);
                let mut completed = false;
                let mut stop = None;
                let result = {
                    let announce = self.transports.announce(job.tracker, &job.url, &request);
                    tokio::pin!(announce);
                    loop {
                        tokio::select! {
                            result = &mut announce => break Some(result),
                            command = commands.recv() => match command {
                                Some(Command::Completed) => completed = true,
                                Some(Command::Stop(deadline)) => {
                                    stop = Some(Some(deadline));
                                    break None;
                                }
                                None => {
                                    stop = Some(None);
                                    break None;
                                }
                            },
                        }
                    }
                };
                if let Some(result) = result {
                    self.finish(&job, result).await;
                }
                if completed {
                    self.schedule.complete(Instant::now().into_std());
                }
                match stop {
                    Some(deadline) => break deadline,
                    None => continue,
                }
            }
            let next = self.schedule.next_wakeup();
            self.status.send_if_modified(|status| {
                let changed = next.is_some() && status.next_announce != next;
                if changed {
                    status.next_announce = next;
                }
                changed
            });
            let wake = next.map(Instant::from_std);
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                command = commands.recv() => match command {
                    Some(Command::Completed) => self.schedule.complete(Instant::now().into_std()),
                    Some(Command::Stop(deadline)) => break Some(deadline),
                    None => break None,
                },
            }
        };
        if let Some(deadline) = deadline {
            self.send_stopped(deadline).await;
        }
    }

    fn request(&self, job: &Job) -> Request {
        let progress = *self.progress.borrow();
        Request {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            port: self.port,
            uploaded: progress.uploaded,
            downloaded: progress.downloaded,
            left: progress.left,
            event: job.event,
            numwant: self.numwant,
            key: self.key,
            tracker_id: job.tracker_id.clone(),
        }
    }

    /// Feeds an announce's outcome to the schedule, the status and the torrent.
    async fn finish(&mut self, job: &Job, result: Result<Reply, AnnounceError>) {
        let now = Instant::now().into_std();
        let shown = display_url(&job.url);
        match result {
            Ok(reply) => {
                let answer = Answer {
                    interval: reply.interval,
                    min_interval: reply.min_interval,
                    tracker_id: reply.tracker_id,
                };
                self.schedule.succeeded(job.tracker, &answer, now);
                tracing::debug!(
                    tracker = %shown,
                    event = ?job.event,
                    peers = reply.peers.len(),
                    "announced"
                );
                if let Some(warning) = &reply.warning {
                    tracing::warn!("tracker {shown} warns: {warning}");
                }
                let count = reply.peers.len() as u64;
                let counts_missing = reply.seeders.is_none() || reply.leechers.is_none();
                let next = self.schedule.next_announce();
                self.status.send_modify(|status| {
                    status.tracker = Some(shown.clone());
                    status.seeders = reply.seeders.or(status.seeders);
                    status.leechers = reply.leechers.or(status.leechers);
                    status.last_error = None;
                    status.warning = reply.warning;
                    status.next_announce = Some(next);
                    status.announces += 1;
                    status.peers_received += count;
                });
                if !reply.peers.is_empty() {
                    // A closed channel means the torrent is going away; nothing to do.
                    let _ = self.peers.send(reply.peers).await;
                }
                if counts_missing && Scheme::of(&job.url) == Some(Scheme::Http) {
                    self.scrape(&job.url).await;
                }
            }
            Err(error) => {
                self.schedule.failed(job.tracker, now);
                tracing::info!("tracker {shown}: {error}");
                self.status.send_modify(|status| {
                    status.last_error = Some(format!("{shown}: {error}"));
                });
            }
        }
    }

    /// Scrapes an HTTP tracker whose reply lacked the swarm's counts.
    async fn scrape(&mut self, url: &str) {
        let Ok(http) = self.transports.http() else {
            return;
        };
        match http.scrape(url, self.info_hash).await {
            Ok(counts) => self.status.send_modify(|status| {
                status.seeders = Some(counts.seeders);
                status.leechers = Some(counts.leechers);
                status.completed = Some(counts.completed);
            }),
            Err(e) => tracing::debug!("scrape of {}: {e}", display_url(url)),
        }
    }

    /// `stopped` to every started tracker, in parallel, until `deadline`.
    async fn send_stopped(mut self, deadline: Instant) {
        let jobs = self.schedule.stop_jobs();
        let mut sends = JoinSet::new();
        for job in jobs {
            let request = self.request(&job);
            let http = self.transports.http.clone();
            let udp = self.transports.udp.remove(&job.tracker);
            let udp_config = self.transports.udp_config.clone();
            sends.spawn(async move {
                let result = match (Scheme::of(&job.url), udp) {
                    (Some(Scheme::Udp), Some(mut tracker)) => tracker.announce(&request).await,
                    (Some(Scheme::Udp), None) => match UdpTracker::open(&job.url, udp_config).await
                    {
                        Ok(mut tracker) => tracker.announce(&request).await,
                        Err(e) => Err(e),
                    },
                    _ => match http {
                        Ok(http) => http.announce(&job.url, &request).await,
                        Err(e) => Err(AnnounceError::Network(e)),
                    },
                };
                if let Err(e) = result {
                    tracing::debug!("stopped to {}: {e}", display_url(&job.url));
                }
            });
        }
        let all = async { while sends.join_next().await.is_some() {} };
        let _ = tokio::time::timeout_at(deadline, all).await;
    }
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
