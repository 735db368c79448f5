//! The ledger: per-user accounting from announce deltas, kept as pending credits for the
//! persistence layer to flush in batches.
//!
//! Rules (each has a unit test in `tests.rs` and a model in `proptests.rs`):
//! - A baseline is kept per peer, keyed by (user, torrent, peer id) ([`PeerKey`]). A peer's
//!   first announce only sets the baseline: it credits nothing.
//! - A later announce credits `reported - baseline` for `uploaded` and `downloaded`. If either
//!   counter went down (the client restarted), both re-baseline and nothing is credited: after
//!   a restart neither difference means anything.
//! - Upload credit is scaled by the torrent's multiplier in percent, exactly: the peer keeps
//!   a carry of byte-hundredths, so over a peer's life the credit is
//!   `floor(sum(delta_i * percent_i) / 100)`; the carry (under one byte) is dropped when the
//!   baseline ends. Freeleech credits no download.
//! - `completed` with `left == 0` counts one snatch per peer baseline (a duplicate does not).
//! - Seeding time: when a peer was a seeder at its previous announce, the time since then is
//!   credited, capped at `max_gap` (a peer that vanished and came back is not credited for
//!   the gap), and never across a re-baseline (a restart means it was down for a while).
//!   Per (user, torrent) a high-water mark (`seeded_until`) keeps the credited intervals
//!   disjoint, so two clients of one user seeding one torrent are not credited twice and the
//!   total never exceeds the time elapsed since the first announce.
//! - `stopped` credits the final delta, then removes the baseline. A `stopped` from an
//!   unknown peer changes nothing. [`Ledger::purge`] drops baselines not heard from within
//!   the ttl, crediting nothing.
//!
//! The flush invariant: every credited byte, snatch and second appears in exactly one batch
//! taken by [`Ledger::take_pending`] and not given back by [`Ledger::restore_pending`], or is
//! still pending. Pending credits are merged per (user, torrent), so a flush writes one row
//! per key, sorted by key, which also keeps multi-row upserts from
//! deadlocking one another. A batch also carries the baselines changed since the previous
//! batch (upserts and removals): written in the same transaction as the credits, they make
//! the database's baselines match its credits exactly, so after a crash the next announce
//! is credited from the right baseline: bytes announced after the last written batch are
//! credited again from the stored baseline, not lost (a `completed` in that window is;
//! seeding time is recovered up to the gap cap). This needs at most one batch in flight: take the next only after the
//! previous one was written or given back (a later batch's baselines would otherwise pass
//! an earlier failed batch's credits). The credit sums stay exact either way (proptested).

use std::collections::HashMap;

use rill_common::PeerId;

use super::registry::{TorrentId, UploadMultiplier, UserId};

/// The key of a peer baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey {
    /// The user.
    pub user: UserId,
    /// The torrent.
    pub torrent: TorrentId,
    /// The peer id the client announced with.
    pub peer_id: PeerId,
}

/// A peer baseline, as the persistence layer stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// Whose peer.
    pub key: PeerKey,
    /// `uploaded` at the last announce.
    pub uploaded: u64,
    /// `downloaded` at the last announce.
    pub downloaded: u64,
    /// Unix seconds of the last announce.
    pub last_seen: u64,
    /// Whether `left` was 0 at the last announce.
    pub seeder: bool,
    /// Whether this peer's snatch was counted.
    pub snatched: bool,
    /// Upload credit not yet whole, in byte-hundredths (below 100).
    pub carry: u8,
}

/// Amounts credited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// Upload credit in bytes (multiplier applied).
    pub uploaded: u64,
    /// Download credit in bytes (0 on freeleech).
    pub downloaded: u64,
    /// Snatches counted.
    pub snatches: u32,
    /// Seeding seconds.
    pub seeding_secs: u64,
}

impl Delta {
    fn add(&mut self, other: &Delta) {
        self.uploaded = self.uploaded.saturating_add(other.uploaded);
        self.downloaded = self.downloaded.saturating_add(other.downloaded);
        self.snatches = self.snatches.saturating_add(other.snatches);
        self.seeding_secs = self.seeding_secs.saturating_add(other.seeding_secs);
    }

    /// Whether nothing is credited.
    pub fn is_zero(&self) -> bool {
        *self == Delta::default()
    }
}

/// Pending credits of one (user, torrent): one database row of a flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credit {
    /// The user.
    pub user: UserId,
    /// The torrent.
    pub torrent: TorrentId,
    /// Amounts to add to the row.
    pub delta: Delta,
    /// The seeding high-water mark (unix seconds) to store as `max(stored, this)`.
    pub seeded_until: u64,
}

/// A change to a stored peer baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerChange {
    /// Insert or replace the baseline.
    Upsert(PeerRecord),
    /// Delete the baseline (stopped or purged).
    Remove(PeerKey),
}

impl PeerChange {
    /// The baseline's key.
    pub fn key(&self) -> PeerKey {
        match self {
            PeerChange::Upsert(record) => record.key,
            PeerChange::Remove(key) => *key,
        }
    }
}

/// What one flush writes, in one transaction: credits sorted by (user, torrent), baseline
/// changes sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Credits to add, one per (user, torrent).
    pub credits: Vec<Credit>,
    /// Baselines changed since the previous batch.
    pub peers: Vec<PeerChange>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.credits.is_empty() && self.peers.is_empty()
    }
}

/// Everything [`Ledger::restore`] needs after a restart: baselines and seeding marks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every live baseline.
    pub peers: Vec<PeerRecord>,
    /// Seeding high-water marks per (user, torrent), unix seconds.
    pub seeded_until: Vec<(UserId, TorrentId, u64)>,
}

/// How an announce related to its peer's baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    /// First announce: baseline set, nothing credited.
    New,
    /// Deltas credited from the baseline.
    Continued,
    /// A counter went down: re-baselined, nothing credited.
    Rebaselined,
    /// `stopped`: final delta credited, baseline removed.
    Ended,
    /// `stopped` from a peer without a baseline: nothing changed.
    UnknownStop,
}

/// What an announce reports, for accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Report {
    pub(super) uploaded: u64,
    pub(super) downloaded: u64,
    pub(super) seeder: bool,
    pub(super) completed: bool,
    pub(super) stopped: bool,
}

/// The crediting terms of a torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Terms {
    pub(super) freeleech: bool,
    pub(super) multiplier: UploadMultiplier,
}

/// Credit waiting for a flush: amounts and the seeding mark to store (0: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pending {
    delta: Delta,
    seeded_until: u64,
}

impl Pending {
    fn add(&mut self, delta: &Delta, seeded_until: Option<u64>) {
        self.delta.add(delta);
        if let Some(mark) = seeded_until {
            self.seeded_until = self.seeded_until.max(mark);
        }
    }

    fn merge(&mut self, other: &Pending) {
        let mark = (other.seeded_until > 0).then_some(other.seeded_until);
        self.add(&other.delta, mark);
    }

    /// Whether there is nothing to write: no row is written for it.
    fn is_empty(&self) -> bool {
        *self == Pending::default()
    }
}

/// A live baseline with what it credited since the last batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    record: PeerRecord,
    /// Credited by this peer since the last batch, merged per (user, torrent) at the take.
    pending: Pending,
    /// Changed since the last batch (its key is then in `Ledger::changed`).
    changed: bool,
}

/// A map whose keys no client chooses (database ids): a fast hasher with a random seed.
type IdMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Baselines, seeding marks and pending credits.
///
/// Layout (for the announce path: one hash lookup per announce): an announce's credit is
/// added to its own peer's entry, and the entry is flagged changed, its key pushed once per
/// batch onto `changed`; [`Ledger::take_pending`] merges the entries' credits per (user,
/// torrent). Credit of a baseline that ends before the take (stopped, purged), and of a
/// batch given back, waits in `loose`; keys of ended baselines in `removed` (never a live
/// key). The peers map keeps std's keyed SipHash: its keys hold client-chosen peer ids.
/// `changed_count` and `credited_count` count the flagged entries and those holding credit,
/// so that [`Ledger::backlog`] costs nothing.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    peers: HashMap<PeerKey, Entry>,
    seeded_until: IdMap<(UserId, TorrentId), u64>,
    /// Keys whose entry was flagged changed since the last take (a key repeats when its
    /// baseline ended and started again; the flag decides).
    changed: Vec<PeerKey>,
    /// Live entries flagged changed.
    changed_count: usize,
    /// Live entries holding pending credit.
    credited_count: usize,
    /// Keys of baselines that ended since the last take and are not live again.
    removed: std::collections::HashSet<PeerKey>,
    /// Pending credit not held by a live entry.
    loose: IdMap<(UserId, TorrentId), Pending>,
}

impl Ledger {
    /// Applies one announce (see the module doc) and returns what it credited.
    pub(super) fn record(
        &mut self,
        key: PeerKey,
        report: Report,
        terms: Terms,
        now: u64,
        max_gap: u64,
    ) -> (Session, Delta) {
        let mut delta = Delta::default();
        let Some(entry) = self.peers.get_mut(&key) else {
            if report.stopped {
                return (Session::UnknownStop, delta);
            }
            let snatched = report.completed && report.seeder;
            delta.snatches = u32::from(snatched);
            let mut pending = Pending::default();
            pending.add(&delta, None);
            self.changed_count += 1;
            self.credited_count += usize::from(!pending.is_empty());
            if !self.removed.is_empty() {
                self.removed.remove(&key);
            }
            let record = PeerRecord {
                key,
                uploaded: report.uploaded,
                downloaded: report.downloaded,
                last_seen: now,
                seeder: report.seeder,
                snatched,
                carry: 0,
            };
            self.peers.insert(
                key,
                Entry {
                    record,
                    pending,
                    changed: true,
                },
            );
            self.changed.push(key);
            return (Session::New, delta);
        };
        let base = &mut entry.record;
        let rebaselined = report.uploaded < base.uploaded || report.downloaded < base.downloaded;
        let mut seeded = None;
        if !rebaselined {
            let scaled = u128::from(report.uploaded - base.uploaded)
                * u128::from(terms.multiplier.0)
                + u128::from(base.carry);
            delta.uploaded = u64::try_from(scaled / 100).unwrap_or(u64::MAX);
            base.carry = u8::try_from(scaled % 100).unwrap_or(0);
            if !terms.freeleech {
                delta.downloaded = report.downloaded - base.downloaded;
            }
            if base.seeder {
                let start = base.last_seen;
                let end = now.min(start.saturating_add(max_gap));
                let mark = self
                    .seeded_until
                    .entry((key.user, key.torrent))
                    .or_default();
                delta.seeding_secs = end.saturating_sub(start.max(*mark));
                if end > *mark {
                    *mark = end;
                    seeded = Some(end);
                }
            }
        }
        if report.completed && report.seeder && !base.snatched {
            base.snatched = true;
            delta.snatches = 1;
        }
        base.uploaded = report.uploaded;
        base.downloaded = report.downloaded;
        base.last_seen = base.last_seen.max(now);
        base.seeder = report.seeder;
        let had_credit = !entry.pending.is_empty();
        entry.pending.add(&delta, seeded);
        if !had_credit && !entry.pending.is_empty() {
            self.credited_count += 1;
        }
        if !entry.changed {
            entry.changed = true;
            self.changed_count += 1;
            self.changed.push(key);
        }
        if report.stopped {
            self.end(key);
            return (Session::Ended, delta);
        }
        let session = if rebaselined {
            Session::Rebaselined
        } else {
            Session::Continued
        };
        (session, delta)
    }

    /// Removes a live baseline: its pending credit moves to `loose`, its key to `removed`.
    fn end(&mut self, key: PeerKey) {
        if let Some(entry) = self.peers.remove(&key) {
            self.forget(key, &entry);
        }
    }

    /// The bookkeeping of an entry just removed from `peers`.
    fn forget(&mut self, key: PeerKey, entry: &Entry) {
        if !entry.pending.is_empty() {
            self.credited_count -= 1;
            let loose = self.loose.entry((key.user, key.torrent)).or_default();
            loose.merge(&entry.pending);
        }
        if entry.changed {
            self.changed_count -= 1;
        }
        self.removed.insert(key);
    }

    /// Takes the pending credits and baseline changes in no particular order (credits
    /// still merged per (user, torrent)): [`Ledger::take_pending`] without the sort of the
    /// baseline changes, for a caller that merges several ledgers and sorts once.
    pub fn take_unsorted(&mut self) -> Batch {
        let mut credits: Vec<((UserId, TorrentId), Pending)> = self.loose.drain().collect();
        let mut peers = Vec::with_capacity(self.changed_count + self.removed.len());
        for key in self.changed.drain(..) {
            // A repeated key finds its flag already cleared by its first occurrence.
            let Some(entry) = self.peers.get_mut(&key).filter(|e| e.changed) else {
                continue;
            };
            entry.changed = false;
            if !entry.pending.is_empty() {
                credits.push(((key.user, key.torrent), std::mem::take(&mut entry.pending)));
            }
            peers.push(PeerChange::Upsert(entry.record));
        }
        peers.extend(self.removed.drain().map(PeerChange::Remove));
        self.changed_count = 0;
        self.credited_count = 0;
        Batch {
            credits: merged(credits),
            peers,
        }
    }

    /// Takes every pending credit and baseline change, merged per key and sorted: the
    /// caller writes it in one transaction, and gives it back with
    /// [`Ledger::restore_pending`] if the write fails.
    pub fn take_pending(&mut self) -> Batch {
        let mut batch = self.take_unsorted();
        batch.peers.sort_unstable_by_key(PeerChange::key);
        batch
    }

    /// Puts a batch that could not be written back, merged with what was credited since,
    /// so that the next [`Ledger::take_pending`] retries it. Baselines are re-sent as they
    /// are now (newer than the batch's, which are dropped).
    pub fn restore_pending(&mut self, batch: Batch) {
        for credit in batch.credits {
            let pending = Pending {
                delta: credit.delta,
                seeded_until: credit.seeded_until,
            };
            if !pending.is_empty() {
                let key = (credit.user, credit.torrent);
                self.loose.entry(key).or_default().merge(&pending);
            }
        }
        for change in batch.peers {
            let key = match change {
                PeerChange::Upsert(record) => record.key,
                PeerChange::Remove(key) => key,
            };
            match self.peers.get_mut(&key) {
                Some(entry) if !entry.changed => {
                    entry.changed = true;
                    self.changed_count += 1;
                    self.changed.push(key);
                }
                Some(_) => {}
                None => {
                    self.removed.insert(key);
                }
            }
        }
    }

    /// The pending credits (not yet taken), merged per (user, torrent), sorted.
    pub fn pending(&self) -> impl Iterator<Item = Credit> + '_ {
        let mut credits: Vec<((UserId, TorrentId), Pending)> =
            self.loose.iter().map(|(&key, p)| (key, *p)).collect();
        let live = self.peers.iter().filter(|(_, e)| !e.pending.is_empty());
        credits.extend(live.map(|(key, e)| ((key.user, key.torrent), e.pending)));
        merged(credits).into_iter()
    }

    /// What waits for the next batch: credit entries (per peer until the take merges
    /// them per (user, torrent), so at least the rows the batch will have) and changed
    /// baselines. Zero for both exactly when a take would give an empty batch.
    pub fn backlog(&self) -> (usize, usize) {
        (
            self.credited_count + self.loose.len(),
            self.changed_count + self.removed.len(),
        )
    }

    /// The live baseline of a peer.
    pub fn peer(&self, key: &PeerKey) -> Option<&PeerRecord> {
        self.peers.get(key).map(|e| &e.record)
    }

    /// How many baselines are live.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Every live baseline and seeding mark, sorted, for a full save.
    pub fn snapshot(&self) -> Snapshot {
        let mut peers: Vec<PeerRecord> = self.peers.values().map(|e| e.record).collect();
        peers.sort_unstable_by_key(|p| p.key);
        let mut seeded_until: Vec<(UserId, TorrentId, u64)> = self
            .seeded_until
            .iter()
            .map(|(&(user, torrent), &mark)| (user, torrent, mark))
            .collect();
        seeded_until.sort_unstable();
        Snapshot {
            peers,
            seeded_until,
        }
    }

    /// Replaces the baselines and seeding marks with saved ones (at start, before any
    /// announce). Pending credits are kept; nothing is marked changed.
    pub fn restore(&mut self, snapshot: Snapshot) {
        for (key, entry) in std::mem::take(&mut self.peers) {
            self.forget(key, &entry);
        }
        self.peers = snapshot
            .peers
            .into_iter()
            .map(|record| {
                let entry = Entry {
                    record,
                    pending: Pending::default(),
                    changed: false,
                };
                (record.key, entry)
            })
            .collect();
        self.seeded_until = snapshot
            .seeded_until
            .into_iter()
            .map(|(user, torrent, mark)| ((user, torrent), mark))
            .collect();
        self.changed.clear();
        self.changed_count = 0;
        self.removed.clear();
    }

    /// Drops baselines not heard from for more than `ttl` seconds (crediting nothing) and
    /// seeding marks no live baseline can extend. Returns how many baselines were dropped.
    pub fn purge(&mut self, now: u64, ttl: u64) -> usize {
        let before = self.peers.len();
        let expired: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, e)| now.saturating_sub(e.record.last_seen) > ttl)
            .map(|(key, _)| *key)
            .collect();
        for key in expired {
            self.end(key);
        }
        let live: IdMap<(UserId, TorrentId), ()> = self
            .peers
            .keys()
            .map(|k| ((k.user, k.torrent), ()))
            .collect();
        // A new baseline starts at its first announce, at or after `now`: a mark at or
        // before `now` without a live baseline cannot matter any more.
        self.seeded_until
            .retain(|key, mark| live.contains_key(key) || *mark > now);
        before - self.peers.len()
    }
}

/// Sorts credits by (user, torrent) and merges those of one key.
fn merged(mut credits: Vec<((UserId, TorrentId), Pending)>) -> Vec<Credit> {
    credits.sort_unstable_by_key(|(key, _)| *key);
    let mut out: Vec<Credit> = Vec::with_capacity(credits.len());
    for ((user, torrent), p) in credits {
        match out.last_mut() {
            Some(last) if (last.user, last.torrent) == (user, torrent) => {
                last.delta.add(&p.delta);
                last.seeded_until = last.seeded_until.max(p.seeded_until);
            }
            _ => out.push(Credit {
                user,
                torrent,
                delta: p.delta,
                seeded_until: p.seeded_until,
            }),
        }
    }
    out
}
