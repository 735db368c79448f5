//! Proptests of the accounting: random announce sequences (counters up, down, repeated;
//! client restarts; duplicates; stopped; purges; tracker restarts through snapshot and
//! restore; flushes that succeed, fail and are retried) against a model that computes the
//! expected credits its own way: per peer session, the sum of positive deltas and
//! `floor(sum(delta * percent) / 100)`, not the ledger's incremental carry.

use std::collections::HashMap;

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

#[derive(Default)]
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

/// Checks the ledger's credits (written + in flight + pending) against the model.
fn check_totals(
    tracker: &PrivateTracker,
    model: &Model,
    written: &HashMap<(u64, u64), Delta>,
    in_flight: &[Batch],
    exact_seeding: bool,
) -> Result<(), TestCaseError> {
    let mut all = written.clone();
    for batch in in_flight {
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

fn run(ops: Vec<Op>, peers: u8) -> Result<(), TestCaseError> {
    let passkeys = [
        Passkey::parse(&"a".repeat(32)).unwrap(),
        Passkey::parse(&"b".repeat(32)).unwrap(),
    ];
    let mut tracker = tracker(&passkeys);
    let mut model = Model::default();
    let mut client: HashMap<(u8, u8, u8), (u64, u64)> = HashMap::new();
    let mut written: HashMap<(u64, u64), Delta> = HashMap::new();
    let mut in_flight: Vec<Batch> = Vec::new();
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
            Op::Take => in_flight.push(tracker.take_pending()),
            Op::Commit => {
                if !in_flight.is_empty() {
                    add(&mut written, &in_flight.remove(0));
                }
            }
            Op::Fail => {
                if !in_flight.is_empty() {
                    tracker.restore_pending(in_flight.remove(0));
                }
            }
            Op::Restart => {
                for batch in in_flight.drain(..) {
                    add(&mut written, &batch);
                }
                add(&mut written, &tracker.take_pending());
                let saved = tracker.snapshot();
                tracker = self::tracker(&passkeys);
                tracker.restore(saved);
            }
        }
        prop_assert_eq!(tracker.ledger().peer_count(), model.sessions.len());
        check_totals(&tracker, &model, &written, &in_flight, peers == 1)?;
    }
    // Every credit ends up written exactly once: fail what is in flight, then flush.
    for batch in in_flight.drain(..) {
        tracker.restore_pending(batch);
    }
    add(&mut written, &tracker.take_pending());
    prop_assert!(tracker.take_pending().credits.is_empty());
    check_totals(&tracker, &model, &written, &[], peers == 1)
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

    /// One peer per (user, torrent): seeding time is exact.
    #[test]
    fn accounting_matches_the_model_one_peer(ops in prop::collection::vec(op(1), 1..120)) {
        run(ops, 1)?;
    }

    /// Several peers per (user, torrent): seeding time is bounded, never double-counted.
    #[test]
    fn accounting_matches_the_model_many_peers(ops in prop::collection::vec(op(3), 1..120)) {
        run(ops, 3)?;
    }
}
