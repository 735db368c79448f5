//! Proptests of the accounting: random announce sequences (counters up, down, repeated;
//! client restarts; duplicates; stopped; purges; tracker restarts through snapshot and
//! restore; flushes that succeed, fail and are retried) against a model that computes the
//! expected credits its own way: per peer session, the sum of positive deltas and
//! `floor(sum(delta * percent) / 100)`, not the ledger's incremental carry.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use rill_common::tracker::AnnounceEvent;
use rill_common::{InfoHash, PeerId};

use super::*;

const T0: u64 = 1_700_000_000;
const GAP: u64 = 1000;
const TTL: u64 = 2500;
/// Torrent 0 is normal, 1 freeleech, 2 at 150 %, 3 at 33 %.
const TERMS: [(bool, u32); 4] = [(false, 100), (true, 100), (false, 150), (false, 33)];

#[derive(Clone, Copy, Debug)]
enum Change {
    Same,
    Up(u32),
    Down(u32),
    Zero,
}

#[derive(Clone, Debug)]
enum Op {
    Announce {
        user: u8,
        torrent: u8,
        peer: u8,
        up: Change,
        down: Change,
        seeder: bool,
        event: Option<AnnounceEvent>,
        dt: u64,
    },
    Purge {
        dt: u64,
    },
    /// Take a batch and keep it in flight.
    Take,
    /// The oldest batch in flight was written.
    Commit,
    /// The oldest batch in flight failed and is given back.
    Fail,
    /// Graceful restart: flush everything, snapshot, a new tracker restores it.
    Restart,
    /// `kill -9`: what is not written is lost; a new tracker restores the database.
    Crash,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Same),
        6 => (0u32..1_000_000).prop_map(Change::Up),
        1 => (1u32..1_000_000).prop_map(Change::Down),
        1 => Just(Change::Zero),
    ]
}

fn op(peers: u8) -> impl Strategy<Value = Op> {
    let event = prop_oneof![
        4 => Just(None),
        1 => Just(Some(AnnounceEvent::Started)),
        2 => Just(Some(AnnounceEvent::Completed)),
        2 => Just(Some(AnnounceEvent::Stopped)),
    ];
    let announce = (
        0u8..2,
        0u8..4,
        0..peers,
        change(),
        change(),
        any::<bool>(),
        event,
        prop_oneof![0u64..5, 0u64..3000],
    )
        .prop_map(
            |(user, torrent, peer, up, down, seeder, event, dt)| Op::Announce {
                user,
                torrent,
                peer,
                up,
                down,
                seeder,
                event,
                dt,
            },
        );
    prop_oneof![
        20 => announce,
        1 => (0u64..4000).prop_map(|dt| Op::Purge { dt }),
        2 => Just(Op::Take),
        2 => Just(Op::Commit),
        2 => Just(Op::Fail),
        1 => Just(Op::Restart),
        1 => Just(Op::Crash),
    ]
}

fn apply(value: u64, change: Change) -> u64 {
    match change {
        Change::Same => value,
        Change::Up(n) => value + u64::from(n),
        Change::Down(n) => value.saturating_sub(u64::from(n)),
        Change::Zero => 0,
    }
}

/// One peer session in the model: a baseline's life.
#[derive(Clone, Debug, Default)]
struct ModelSession {
    up: u64,
    down: u64,
    last: u64,
    seeder: bool,
    snatched: bool,
    /// Sum of `delta * percent` over the session.
    scaled_up: u128,
}

/// Expected totals per (user, torrent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Totals {
    uploaded: u64,
    downloaded: u64,
    snatches: u32,
    seeding_secs: u64,
}

#[derive(Clone, Default)]
struct Model {
    sessions: HashMap<(u8, u8, u8), ModelSession>,
    /// Upload credit of ended sessions, per (user, torrent).
    closed_up: HashMap<(u8, u8), u64>,
    totals: HashMap<(u8, u8), Totals>,
    /// Per (user, torrent): first announce time and the union of seeding intervals.
    first_seen: HashMap<(u8, u8), u64>,
    last_seen: HashMap<(u8, u8), u64>,
    /// Per (user, torrent): the seeding intervals `[start, end)` each peer earned.
    intervals: HashMap<(u8, u8), Vec<(u64, u64)>>,
    sessions_started: u32,
}

impl Model {
    fn end(&mut self, key: (u8, u8, u8)) {
        if let Some(s) = self.sessions.remove(&key) {
            *self.closed_up.entry((key.0, key.1)).or_default() +=
                u64::try_from(s.scaled_up / 100).unwrap();
        }
    }

    fn expected_up(&self, ut: (u8, u8)) -> u64 {
        let live: u64 = self
            .sessions
            .iter()
            .filter(|(k, _)| (k.0, k.1) == ut)
            .map(|(_, s)| u64::try_from(s.scaled_up / 100).unwrap())
            .sum();
        self.closed_up.get(&ut).copied().unwrap_or(0) + live
    }

    /// The length of the union of the seeding intervals of a (user, torrent).
    fn seeding_union(&self, ut: (u8, u8)) -> u64 {
        let mut intervals = self.intervals.get(&ut).cloned().unwrap_or_default();
        intervals.sort_unstable();
        let (mut total, mut covered) = (0, 0);
        for (start, end) in intervals {
            let start = start.max(covered);
            if end > start {
                total += end - start;
                covered = end;
            }
        }
        total
    }
}

fn hash(torrent: u8) -> InfoHash {
    InfoHash::from_bytes([torrent + 1; 20])
}

fn peer_id(peer: u8) -> PeerId {
    let mut id = *b"-qB4650-000000000000";
    id[19] = b'a' + peer;
    PeerId::from_bytes(id)
}

fn tracker(passkeys: &[Passkey; 2]) -> PrivateTracker {
    let mut registry = Registry::new();
    for (i, passkey) in passkeys.iter().enumerate() {
        registry
            .add_user(User {
                id: UserId(i as u64 + 1),
                name: format!("user{i}"),
                passkey: *passkey,
                disabled: None,
            })
            .unwrap();
    }
    for (t, (freeleech, percent)) in TERMS.iter().enumerate() {
        registry
            .add_torrent(Torrent {
                id: TorrentId(t as u64 + 1),
                info_hash: hash(t as u8),
                freeleech: *freeleech,
                upload_multiplier: UploadMultiplier(*percent),
            })
            .unwrap();
    }
    let config = PrivateConfig {
        rate_limit: None,
        peer_ttl_secs: TTL,
        max_seeding_gap_secs: GAP,
    };
    PrivateTracker::new(config, registry)
}

fn add(into: &mut HashMap<(u64, u64), Delta>, batch: &Batch) {
    for c in &batch.credits {
        let d = into.entry((c.user.0, c.torrent.0)).or_default();
        d.uploaded += c.delta.uploaded;
        d.downloaded += c.delta.downloaded;
        d.snatches += c.delta.snatches;
        d.seeding_secs += c.delta.seeding_secs;
    }
}

/// The database, as the persistence layer would keep it: credits added, baselines upserted
/// and removed, seeding marks kept at their maximum, all from written batches.
#[derive(Default)]
struct Db {
    credits: HashMap<(u64, u64), Delta>,
    peers: BTreeMap<PeerKey, PeerRecord>,
    marks: BTreeMap<(UserId, TorrentId), u64>,
    /// The model as of the last written batch's `take_pending`.
    model: Model,
}

impl Db {
    fn write(&mut self, batch: &Batch, model: Model) {
        add(&mut self.credits, batch);
        for c in batch.credits.iter().filter(|c| c.seeded_until > 0) {
            let mark = self.marks.entry((c.user, c.torrent)).or_default();
            *mark = (*mark).max(c.seeded_until);
        }
        for change in &batch.peers {
            match change {
                PeerChange::Upsert(record) => {
                    self.peers.insert(record.key, *record);
                }
                PeerChange::Remove(key) => {
                    self.peers.remove(key);
                }
            }
        }
        self.model = model;
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            peers: self.peers.values().copied().collect(),
            seeded_until: self.marks.iter().map(|(&(u, t), &m)| (u, t, m)).collect(),
        }
    }
}

/// Checks the ledger's credits (written + in flight + pending) against the model.
fn check_totals(
    tracker: &PrivateTracker,
    model: &Model,
    written: &HashMap<(u64, u64), Delta>,
    in_flight: &[(Batch, Model)],
    exact_seeding: bool,
) -> Result<(), TestCaseError> {
    let mut all = written.clone();
    for (batch, _) in in_flight {
        add(&mut all, batch);
    }
    let pending = Batch {
        credits: tracker.ledger().pending().collect(),
        peers: Vec::new(),
    };
    add(&mut all, &pending);
    let mut snatches = 0;
    for user in 0u8..2 {
        for torrent in 0u8..4 {
            let got = all
                .get(&(u64::from(user) + 1, u64::from(torrent) + 1))
                .copied()
                .unwrap_or_default();
            let want = model
                .totals
                .get(&(user, torrent))
                .cloned()
                .unwrap_or_default();
            let ut = (user, torrent);
            prop_assert_eq!(got.uploaded, model.expected_up(ut), "uploaded {:?}", ut);
            prop_assert_eq!(got.downloaded, want.downloaded, "downloaded {:?}", ut);
            prop_assert_eq!(got.snatches, want.snatches, "snatches {:?}", ut);
            if TERMS[usize::from(torrent)].0 {
                prop_assert_eq!(got.downloaded, 0, "freeleech credited a download");
            }
            let elapsed = model.last_seen.get(&ut).copied().unwrap_or(0)
                - model.first_seen.get(&ut).copied().unwrap_or(0);
            prop_assert!(got.seeding_secs <= elapsed, "seeding {ut:?} beyond elapsed");
            prop_assert!(
                got.seeding_secs <= model.seeding_union(ut),
                "seeding {ut:?} credited twice"
            );
            if exact_seeding {
                prop_assert_eq!(got.seeding_secs, want.seeding_secs, "seeding {:?}", ut);
            }
            snatches += got.snatches;
        }
    }
    prop_assert!(
        snatches <= model.sessions_started,
        "more snatches than peers"
    );
    Ok(())
}

/// Runs `ops`. `pipelined`: several batches may be in flight and written or failed out of
/// order (the credit sums must still add up), and crashes are skipped; otherwise at most one
/// batch is in flight, as the persistence layer must do for its database to stay
/// consistent, and a crash rolls back to the database.
fn run(ops: Vec<Op>, peers: u8, pipelined: bool) -> Result<(), TestCaseError> {
    let passkeys = [
        Passkey::parse(&"a".repeat(32)).unwrap(),
        Passkey::parse(&"b".repeat(32)).unwrap(),
    ];
    let mut tracker = tracker(&passkeys);
    let mut model = Model::default();
    let mut client: HashMap<(u8, u8, u8), (u64, u64)> = HashMap::new();
    let mut db = Db::default();
    let mut in_flight: Vec<(Batch, Model)> = Vec::new();
    let mut now = T0;
    for op in ops {
        match op {
            Op::Announce {
                user,
                torrent,
                peer,
                up,
                down,
                seeder,
                event,
                dt,
            } => {
                now += dt;
                let key = (user, torrent, peer);
                let counters = client.entry(key).or_default();
                *counters = (apply(counters.0, up), apply(counters.1, down));
                let (up, down) = *counters;
                let a = PrivateAnnounce {
                    info_hash: hash(torrent),
                    peer_id: peer_id(peer),
                    event,
                    uploaded: up,
                    downloaded: down,
                    left: u64::from(!seeder),
                };
                let admitted = tracker
                    .check(&passkeys[usize::from(user)], &a, now)
                    .unwrap();
                let had = model.sessions.contains_key(&key);
                let went_down = model
                    .sessions
                    .get(&key)
                    .is_some_and(|s| up < s.up || down < s.down);
                model_announce(&mut model, key, a, now);
                let stopped = event == Some(AnnounceEvent::Stopped);
                let want = match (had, stopped) {
                    (false, true) => Session::UnknownStop,
                    (false, false) => Session::New,
                    (true, true) => Session::Ended,
                    (true, false) if went_down => Session::Rebaselined,
                    (true, false) => Session::Continued,
                };
                prop_assert_eq!(admitted.session, want);
            }
            Op::Purge { dt } => {
                now += dt;
                tracker.purge(now);
                let expired: Vec<_> = model
                    .sessions
                    .iter()
                    .filter(|(_, s)| now - s.last > TTL)
                    .map(|(k, _)| *k)
                    .collect();
                for key in expired {
                    model.end(key);
                }
            }
            Op::Take => {
                if pipelined || in_flight.is_empty() {
                    in_flight.push((tracker.take_pending(), model.clone()));
                }
            }
            Op::Commit => {
                if !in_flight.is_empty() {
                    let (batch, taken_at) = in_flight.remove(0);
                    db.write(&batch, taken_at);
                }
            }
            Op::Fail => {
                if !in_flight.is_empty() {
                    tracker.restore_pending(in_flight.remove(0).0);
                }
            }
            Op::Restart => {
                for (batch, taken_at) in in_flight.drain(..) {
                    db.write(&batch, taken_at);
                }
                db.write(&tracker.take_pending(), model.clone());
                let saved = tracker.snapshot();
                tracker = self::tracker(&passkeys);
                tracker.restore(saved);
                if !pipelined {
                    // The database's baselines are the tracker's; it keeps every mark the
                    // tracker keeps (and old ones the tracker purged, which are harmless).
                    let (ours, stored) = (tracker.snapshot(), db.snapshot());
                    prop_assert_eq!(&ours.peers, &stored.peers);
                    for mark in &ours.seeded_until {
                        prop_assert!(stored.seeded_until.contains(mark), "mark {:?}", mark);
                    }
                }
            }
            Op::Crash => {
                if !pipelined {
                    in_flight.clear();
                    tracker = self::tracker(&passkeys);
                    tracker.restore(db.snapshot());
                    model = db.model.clone();
                }
            }
        }
        prop_assert_eq!(tracker.ledger().peer_count(), model.sessions.len());
        check_totals(&tracker, &model, &db.credits, &in_flight, peers == 1)?;
    }
    // Every credit ends up written exactly once: fail what is in flight, then flush.
    for (batch, _) in in_flight.drain(..) {
        tracker.restore_pending(batch);
    }
    db.write(&tracker.take_pending(), model.clone());
    prop_assert!(tracker.take_pending().credits.is_empty());
    check_totals(&tracker, &model, &db.credits, &[], peers == 1)
}

/// The model's view of one announce, written from the rules, not from the ledger's code.
fn model_announce(model: &mut Model, key: (u8, u8, u8), a: PrivateAnnounce, now: u64) {
    let ut = (key.0, key.1);
    let (freeleech, percent) = TERMS[usize::from(key.1)];
    let stopped = a.event == Some(AnnounceEvent::Stopped);
    let completed = a.event == Some(AnnounceEvent::Completed) && a.left == 0;
    let Some(s) = model.sessions.get_mut(&key) else {
        if stopped {
            return;
        }
        model.first_seen.entry(ut).or_insert(now);
        model.last_seen.insert(ut, now);
        let totals = model.totals.entry(ut).or_default();
        totals.snatches += u32::from(completed);
        model.sessions_started += 1;
        model.sessions.insert(
            key,
            ModelSession {
                up: a.uploaded,
                down: a.downloaded,
                last: now,
                seeder: a.left == 0,
                snatched: completed,
                scaled_up: 0,
            },
        );
        return;
    };
    model.last_seen.insert(ut, now);
    let totals = model.totals.entry(ut).or_default();
    if a.uploaded >= s.up && a.downloaded >= s.down {
        s.scaled_up += u128::from(a.uploaded - s.up) * u128::from(percent);
        if !freeleech {
            totals.downloaded += a.downloaded - s.down;
        }
        if s.seeder {
            let earned = (now - s.last).min(GAP);
            totals.seeding_secs += earned;
            let list = model.intervals.entry(ut).or_default();
            list.push((s.last, s.last + earned));
        }
    }
    if completed && !s.snatched {
        s.snatched = true;
        totals.snatches += 1;
    }
    s.up = a.uploaded;
    s.down = a.downloaded;
    s.last = now;
    s.seeder = a.left == 0;
    if stopped {
        model.end(key);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// One peer per (user, torrent): seeding time is exact; crashes roll back to the database.
    #[test]
    fn accounting_matches_the_model_one_peer(ops in prop::collection::vec(op(1), 1..120)) {
        run(ops, 1, false)?;
    }

    /// Several peers per (user, torrent): seeding time is bounded, never double-counted;
    /// crashes roll back to the database.
    #[test]
    fn accounting_matches_the_model_many_peers(ops in prop::collection::vec(op(3), 1..120)) {
        run(ops, 3, false)?;
    }

    /// Several batches in flight, written or failed out of order: nothing is lost or
    /// credited twice.
    #[test]
    fn pipelined_flushes_never_lose_or_double_credit(ops in prop::collection::vec(op(3), 1..120)) {
        run(ops, 3, true)?;
    }
}
