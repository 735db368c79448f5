//! The shell of one torrent: the one place a torrent awaits.
//!
//! It owns the [`TorrentState`], reads the clock, and turns the world into [`Event`]s and the
//! state's [`Action`]s into I/O: connections ([`crate::peer::connection`]), disk work on
//! blocking threads ([`BlockStore`]), announces ([`Trackers`]).
//!
//! Invariants:
//! - [`PeerKey`]s are never reused within a task, so a late event of a closed connection
//!   cannot be taken for a new one; events of keys no longer live are dropped.
//! - Every connection the state knows of gets exactly one [`Event::Disconnected`]: when its
//!   link closes by itself, or right after the task carries out [`Action::Disconnect`].
//! - Every [`Action::Write`], [`Action::Verify`] and [`Action::Read`] becomes one job for the
//!   torrent's disk worker (`disk`: one thread; the jobs of one turn of the loop go in one
//!   hand-off, and one wake-up of the task answers each batch) and is answered by exactly
//!   one event, unless the task is stopping; the task stops only
//!   after all disk work in flight has come back, then syncs the data and saves the resume
//!   file (so the resume file never names a piece whose data is not on disk). If the worker
//!   is gone, the job is answered at once with [`Event::StorageFailed`]. A read whose bytes
//!   the worker already read ahead (its shared read cache) is answered at once from them,
//!   without a job.
//! - Progress goes out on a `watch` at most every [`PUBLISH_EVERY`] and once at the end.
//! - While [`MAX_DISK_BYTES`] of received blocks (or [`MAX_DISK_IN_FLIGHT`] jobs) wait for
//!   the disk, no peer message is taken: past the small connection event queue the blocks
//!   wait in the sockets, so memory stays bounded when the disk is slower than the peers.
//!
//! `lifecycle` holds the end of a task (finish policy, clean stop, resume saves, publishing);
//! `store` the traits the storage and the trackers plug in through; `disk` the worker and
//! `hasher` its per-piece SHA-1 fed in block order.

mod dht;
mod disk;
mod hasher;
mod lifecycle;
mod store;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rill_common::bitfield::Bitfield;
use rill_common::wire::{Handshake, codec};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info};

pub use dht::DhtLink;
pub use store::{BlockStore, NoTrackers, PieceInfo, StoreError, Trackers};

use super::PeerKey;
use super::state::{Action, Event, Stats, TorrentState};
use crate::peer::connection::{self, Established, Link, PeerEvent, Throttles, Timeouts};

/// Progress is published at most this often.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// The resume file is saved this often while the torrent runs (and when it stops).
pub const RESUME_EVERY: Duration = Duration::from_secs(30);
/// Ticks come at least this often, whatever the state's deadline.
const MAX_TICK: Duration = Duration::from_secs(1);
/// Connection events queued before connections wait for the task. Small, because while the
/// disk is behind ([`MAX_DISK_BYTES`]) the blocks queued here are the other place received
/// data waits in memory (128 blocks: 2 MiB); past it, they wait in the sockets.
const EVENT_QUEUE: usize = 128;
/// Bytes of received blocks waiting for the disk above which the task stops taking messages
/// from peers, so received blocks wait in the sockets (the peers slow down) rather than in
/// memory.
pub const MAX_DISK_BYTES: usize = 4 << 20;
/// Disk jobs in flight above which the task stops taking messages from peers.
pub const MAX_DISK_IN_FLIGHT: usize = 1024;
/// Connection events handled at one wake-up of the task at most, so the disk's answers, the
/// stop signal and ticks are not held back by a busy peer.
const PEER_BURST: usize = 32;
/// Incoming connections queued for the task.
const INCOMING_QUEUE: usize = 32;

/// When a torrent stops by itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Finish {
    /// As soon as every wanted piece is verified.
    WhenComplete,
    /// Seed after completing until one limit is reached (none: until told to stop).
    Seed {
        /// Stop once uploaded / total size reaches this.
        ratio: Option<f64>,
        /// Stop this long after completing (or after starting, when complete at start).
        time: Option<Duration>,
    },
}

/// Where a torrent is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Fetching pieces.
    Downloading,
    /// Complete, serving others.
    Seeding,
    /// Stopping: announcing `stopped`, flushing, saving resume data.
    Stopping,
    /// Stopped.
    Done,
    /// Stopped on an error (the message is for the user).
    Failed(String),
}

/// What the display and the trackers see of a torrent.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Counters and rates.
    pub stats: Stats,
    /// Verified pieces.
    pub have: Bitfield,
    /// Where the torrent is.
    pub phase: Phase,
    /// Distinct pieces that passed their hash check in this run.
    pub verified_this_run: u32,
    /// Pieces that failed their hash check in this run.
    pub failed_this_run: u32,
}

/// Why a torrent stopped early.
#[derive(Debug, Error)]
pub enum TaskError {
    /// The state machine gave up (storage failed).
    #[error("{0}")]
    Fatal(String),
    /// The task panicked or was cancelled.
    #[error("torrent task ended abnormally: {0}")]
    Aborted(String),
}

/// Everything a torrent task needs.
pub struct Setup {
    /// The state machine, with the pieces already verified.
    pub state: TorrentState,
    /// Our handshake for this torrent (info hash, peer id, reserved bits).
    pub ours: Handshake,
    /// Where the data lives.
    pub store: Arc<dyn BlockStore>,
    /// The trackers (or [`NoTrackers`]).
    pub trackers: Box<dyn Trackers>,
    /// Peers found by the trackers (or anyone else).
    pub found: mpsc::Receiver<Vec<SocketAddr>>,
    /// Peers to connect to at start (`--peer`).
    pub initial_peers: Vec<SocketAddr>,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Rate limits shared with other torrents.
    pub throttles: Arc<Throttles>,
    /// When to stop by itself.
    pub finish: Finish,
    /// Total bytes of the torrent (for the seed ratio).
    pub total_len: u64,
    /// Bytes uploaded and downloaded in earlier runs (from the resume file).
    pub earlier: (u64, u64),
    /// The session's DHT (`None` for private torrents and without a DHT).
    pub dht: Option<DhtLink>,
}

/// A running torrent task.
#[derive(Debug)]
pub struct Handle {
    /// Its progress.
    pub progress: watch::Receiver<Progress>,
    /// Where the listener hands over incoming connections.
    pub incoming: mpsc::Sender<Established>,
    stop: watch::Sender<bool>,
    join: JoinHandle<Result<(), TaskError>>,
}

impl Handle {
    /// Asks the torrent to stop cleanly (idempotent).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Waits for the task to end.
    pub async fn join(self) -> Result<(), TaskError> {
        match self.join.await {
            Ok(result) => result,
            Err(err) => Err(TaskError::Aborted(err.to_string())),
        }
    }
}

/// Starts the torrent task.
pub fn spawn(setup: Setup) -> Handle {
    let progress = Progress {
        stats: setup.state.stats(std::time::Instant::now()),
        have: setup.state.have().clone(),
        phase: if setup.state.is_complete() {
            Phase::Seeding
        } else {
            Phase::Downloading
        },
        verified_this_run: 0,
        failed_this_run: 0,
    };
    let (publish, progress) = watch::channel(progress);
    let (stop, stop_rx) = watch::channel(false);
    let (incoming, incoming_rx) = mpsc::channel(INCOMING_QUEUE);
    let join = tokio::spawn(Task::new(setup, publish).run(stop_rx, incoming_rx));
    Handle {
        progress,
        incoming,
        stop,
        join,
    }
}

/// A connection attempt's outcome.
type Dialled = (SocketAddr, Result<Established, connection::ConnectionError>);

struct Task {
    state: TorrentState,
    ours: Handshake,
    max_len: u32,
    store: Arc<dyn BlockStore>,
    trackers: Option<Box<dyn Trackers>>,
    found: mpsc::Receiver<Vec<SocketAddr>>,
    initial_peers: Vec<SocketAddr>,
    timeouts: Timeouts,
    throttles: Arc<Throttles>,
    finish: Finish,
    total_len: u64,
    earlier: (u64, u64),
    dht: Option<DhtLink>,
    publish: watch::Sender<Progress>,

    links: HashMap<PeerKey, Link>,
    next_key: u32,
    peer_events: (mpsc::Sender<PeerEvent>, mpsc::Receiver<PeerEvent>),
    dials: (mpsc::Sender<Dialled>, mpsc::Receiver<Dialled>),
    /// Jobs for the disk worker, sent together once per turn of the loop.
    disk: std::sync::mpsc::Sender<Vec<disk::Job>>,
    /// Jobs of this turn, not yet sent (counted in `disk_in_flight` and `disk_bytes`).
    disk_jobs: Vec<disk::Job>,
    /// The worker's answers, one batch at a time.
    disk_done: mpsc::UnboundedReceiver<disk::Done>,
    /// Ranges the worker read ahead: requests they hold are answered at once.
    read_cache: Arc<disk::ReadCache>,
    /// Jobs sent and not answered.
    disk_in_flight: usize,
    /// Bytes of writes sent and not answered.
    disk_bytes: usize,
    queue: VecDeque<Event>,
    actions: Vec<Action>,
    completed_at: Option<Instant>,
    stopping: bool,
    fatal: Option<String>,
    verified_this_run: Bitfield,
    failed_this_run: u32,
    last_publish: Option<Instant>,
    last_resume: Instant,
    have_at_last_resume: u32,
    store_completed: bool,
    /// The resume save in progress (the loop goes on while it syncs and writes).
    saving: Option<JoinHandle<()>>,
}

impl Task {
    fn new(setup: Setup, publish: watch::Sender<Progress>) -> Self {
        let piece_count = setup.state.have().piece_count();
        let now = Instant::now();
        let complete = setup.state.is_complete();
        let have_count = setup.state.have().count();
        let disk = disk::spawn(Arc::clone(&setup.store));
        Task {
            state: setup.state,
            ours: setup.ours,
            max_len: codec::max_len_for(piece_count),
            store: setup.store,
            trackers: Some(setup.trackers),
            found: setup.found,
            initial_peers: setup.initial_peers,
            timeouts: setup.timeouts,
            throttles: setup.throttles,
            finish: setup.finish,
            total_len: setup.total_len,
            earlier: setup.earlier,
            dht: setup.dht,
            publish,
            links: HashMap::new(),
            next_key: 0,
            peer_events: mpsc::channel(EVENT_QUEUE),
            dials: mpsc::channel(64),
            disk: disk.jobs,
            disk_jobs: Vec::new(),
            disk_done: disk.done,
            read_cache: disk.cache,
            disk_in_flight: 0,
            disk_bytes: 0,
            queue: VecDeque::new(),
            actions: Vec::new(),
            completed_at: complete.then_some(now),
            stopping: false,
            fatal: None,
            verified_this_run: Bitfield::new(piece_count),
            failed_this_run: 0,
            last_publish: None,
            last_resume: now,
            have_at_last_resume: have_count,
            store_completed: false,
            saving: None,
        }
    }

    async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        mut incoming: mpsc::Receiver<Established>,
    ) -> Result<(), TaskError> {
        self.feed(Event::Start);
        if !self.initial_peers.is_empty() {
            let peers = std::mem::take(&mut self.initial_peers);
            self.feed(Event::PeersFound(peers));
        }
        self.check_finish(Instant::now());
        while !self.stopping {
            self.flush_disk();
            let deadline = self.deadline();
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        self.begin_stop();
                    }
                }
                Some(done) = self.disk_done.recv() => {
                    for event in self.take_done(done) {
                        self.queue.push_back(event);
                    }
                    self.drain_queue();
                }
                Some(event) = self.peer_events.1.recv(), if self.disk_ready() => {
                    self.on_peer_event(event);
                    self.take_queued_peer_events();
                }
                Some((addr, dialled)) = self.dials.1.recv() => self.on_dialled(addr, dialled),
                Some(established) = incoming.recv() => self.on_connected(established),
                Some(peers) = self.found.recv() => self.feed(Event::PeersFound(peers)),
                () = tokio::time::sleep_until(deadline) => self.feed(Event::Tick),
            }
            let now = Instant::now();
            self.check_finish(now);
            self.maybe_save_resume(now);
            self.maybe_publish(now, false);
        }
        self.finish_stop().await
    }

    /// Handles the connections' events already queued, up to [`PEER_BURST`] and while the
    /// disk keeps up, without going round the loop for each: a fast peer's blocks arrive
    /// several per read, and the loop's bookkeeping (clock reads, deadline, progress) need
    /// not run once per block.
    fn take_queued_peer_events(&mut self) {
        for _ in 1..PEER_BURST {
            if self.stopping || !self.disk_ready() {
                return;
            }
            match self.peer_events.1.try_recv() {
                Ok(event) => self.on_peer_event(event),
                Err(_) => return,
            }
        }
    }

    /// When the next tick is due: the state's deadline, but at least every [`MAX_TICK`]
    /// and never in the past (a state asking for "now" again and again must not spin).
    fn deadline(&self) -> Instant {
        let now = Instant::now();
        let wanted = Instant::from_std(self.state.next_deadline());
        wanted.clamp(now + Duration::from_millis(5), now + MAX_TICK)
    }

    /// Feeds an event and carries out what follows, including events the actions cause.
    fn feed(&mut self, event: Event) {
        self.queue.push_back(event);
        self.drain_queue();
    }

    fn drain_queue(&mut self) {
        while let Some(event) = self.queue.pop_front() {
            let mut actions = std::mem::take(&mut self.actions);
            self.state
                .handle(event, Instant::now().into_std(), &mut actions);
            for action in actions.drain(..) {
                self.carry_out(action);
            }
            self.actions = actions;
        }
    }

    fn carry_out(&mut self, action: Action) {
        match action {
            Action::Connect(addr) => self.dial(addr),
            Action::Send(peer, message) => {
                if let Some(link) = self.links.get(&peer) {
                    link.send(message);
                }
            }
            Action::Disconnect(peer, reason) => {
                if let Some(link) = self.links.remove(&peer) {
                    debug!(addr = %link.addr, ?reason, "disconnecting");
                    self.queue.push_back(Event::Disconnected(peer));
                }
            }
            Action::Write(block, data) => self.on_disk(disk::Job::Write(block, data)),
            Action::Verify(piece) => self.on_disk(disk::Job::Verify(piece)),
            Action::Read(peer, block) => match self.read_cache.get(block) {
                // Read ahead with an earlier request: no hand-off to the worker.
                Some(data) => self.queue.push_back(Event::BlockRead(peer, block, data)),
                None => self.on_disk(disk::Job::Read(peer, block)),
            },
            Action::Announce(event) => {
                if let Some(trackers) = &mut self.trackers {
                    let stats = self.state.stats(Instant::now().into_std());
                    trackers.announce(event, &stats);
                }
            }
            Action::Completed => {
                if self.completed_at.is_none() {
                    info!("download complete");
                    self.completed_at = Some(Instant::now());
                }
            }
            Action::Fatal(message) => {
                // The message reaches the user as the session's error; here it is for debugging.
                debug!("torrent stops: {message}");
                self.fatal.get_or_insert(message);
                self.begin_stop();
            }
        }
    }

    /// Queues a job for the disk worker (sent by [`Task::flush_disk`] at the end of this
    /// turn; its answer comes back on `disk_done`).
    fn on_disk(&mut self, job: disk::Job) {
        if let disk::Job::Write(_, data) = &job {
            self.disk_bytes += data.len();
        }
        self.disk_in_flight += 1;
        self.disk_jobs.push(job);
    }

    /// Sends the jobs queued in this turn to the disk worker, in one hand-off: the worker is
    /// woken at most once per turn. If the worker is gone, each job is answered at once with
    /// a storage failure.
    fn flush_disk(&mut self) {
        // Failures may lead to more jobs, which fail in turn; the state stops on the first
        // failure, so this ends, but it is bounded all the same.
        for _ in 0..4 {
            if self.disk_jobs.is_empty() {
                return;
            }
            let jobs = std::mem::take(&mut self.disk_jobs);
            let Err(std::sync::mpsc::SendError(jobs)) = self.disk.send(jobs) else {
                return;
            };
            for job in jobs {
                self.disk_in_flight = self.disk_in_flight.saturating_sub(1);
                if let disk::Job::Write(_, data) = &job {
                    self.disk_bytes = self.disk_bytes.saturating_sub(data.len());
                }
                let failed = "the disk worker has stopped".to_owned();
                self.queue.push_back(Event::StorageFailed(failed));
            }
            self.drain_queue();
        }
    }

    /// Whether the disk keeps up, so peers' messages may be taken.
    fn disk_ready(&self) -> bool {
        self.disk_bytes < MAX_DISK_BYTES && self.disk_in_flight < MAX_DISK_IN_FLIGHT
    }

    /// Accounts for a batch of answers from the disk worker and returns its events.
    fn take_done(&mut self, done: disk::Done) -> Vec<Event> {
        self.disk_in_flight = self.disk_in_flight.saturating_sub(done.events.len());
        self.disk_bytes = self.disk_bytes.saturating_sub(done.write_bytes);
        for event in &done.events {
            self.note_disk_event(event);
        }
        done.events
    }

    fn note_disk_event(&mut self, event: &Event) {
        match event {
            Event::PieceVerified(piece, true) => {
                self.verified_this_run.set(*piece, true);
            }
            Event::PieceVerified(_, false) => self.failed_this_run += 1,
            _ => {}
        }
    }

    fn dial(&mut self, addr: SocketAddr) {
        let ours = self.ours;
        let timeouts = self.timeouts;
        let done = self.dials.0.clone();
        tokio::spawn(async move {
            let result = connection::connect(addr, ours, timeouts).await;
            let _ = done.send((addr, result)).await;
        });
    }

    fn on_dialled(
        &mut self,
        addr: SocketAddr,
        dialled: Result<Established, connection::ConnectionError>,
    ) {
        match dialled {
            Ok(established) => self.on_connected(established),
            Err(err) => {
                debug!(%addr, "connect failed: {err}");
                self.feed(Event::ConnectFailed(addr));
            }
        }
    }

    fn on_connected(&mut self, established: Established) {
        // The process-wide connection limit (`--max-connections`), over all torrents.
        let Ok(permit) = Arc::clone(&self.throttles.connections).try_acquire_owned() else {
            debug!(addr = %established.addr, "connection limit reached: closed");
            if established.outgoing {
                self.feed(Event::ConnectFailed(established.addr));
            }
            return;
        };
        let peer = PeerKey(self.next_key);
        self.next_key = self.next_key.wrapping_add(1);
        let addr = established.addr;
        let handshake = established.handshake;
        let outgoing = established.outgoing;
        debug!(%addr, outgoing, peer_id = %handshake.peer_id, "connected");
        let mut link = connection::spawn(
            peer,
            established,
            self.max_len,
            self.timeouts,
            self.peer_events.0.clone(),
            Arc::clone(&self.throttles),
        );
        link.hold(permit);
        self.links.insert(peer, link);
        self.feed(Event::Connected {
            peer,
            addr,
            handshake,
            outgoing,
        });
        // After the state's greeting (extended handshake, bitfield or have-all), which BEP 3
        // wants first.
        if let (Some(dht), Some(link)) = (&self.dht, self.links.get(&peer)) {
            dht.on_connected(link, addr, &handshake);
        }
    }

    fn on_peer_event(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::Message(peer, message) => {
                if let (Some(dht), Some(link)) = (&self.dht, self.links.get(&peer)) {
                    dht.on_message(link.addr, &message);
                }
                if self.links.contains_key(&peer) {
                    self.feed(Event::Received(peer, message));
                }
            }
            PeerEvent::Closed(peer, why) => {
                if let Some(link) = self.links.remove(&peer) {
                    debug!(addr = %link.addr, "connection closed: {why}");
                    self.feed(Event::Disconnected(peer));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
