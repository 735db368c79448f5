//! When to announce, to which tracker, with which event (BEP 3, BEP 12). Pure: no tokio, no
//! clock reads; time comes in as `now`, randomness as an `Rng`.
//!
//! Invariants:
//! - Each tier holds the trackers it was built with (shuffled once at the start, BEP 12);
//!   the only later reordering is the tracker that answers moving to the front of its tier.
//! - At most one announce is in flight ([`Schedule::poll`] hands out one [`Job`] and no
//!   other until it is answered with [`Schedule::succeeded`] or [`Schedule::failed`]).
//! - A round walks the tiers in order and each tier's trackers in order, skipping trackers
//!   still backing off, and ends at the first tracker that answers. The next round starts
//!   `interval` later (clamped to [`ScheduleConfig::min_interval`]..=[`ScheduleConfig::max_interval`]
//!   and never below the tracker's `min interval`), or, when every tracker failed, when the
//!   first backoff ends.
//! - A tracker that failed `n` times in a row waits `backoff_base * 2^(n-1)`, capped at
//!   `backoff_max`, before it is tried again.
//! - Events: `started` to a tracker until one announce to it succeeded; `completed` once,
//!   after [`Schedule::complete`], to the first started tracker that accepts it; `stopped`
//!   only from [`Schedule::stop_jobs`], only to trackers that got `started`. `poll` never
//!   hands out `stopped`.
//! - A `tracker id` from a reply is remembered per tracker and sent back in its next announces.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;
use rill_common::tracker::AnnounceEvent;

/// Timing limits of a [`Schedule`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Shortest wait between regular announces, whatever the tracker says.
    pub min_interval: Duration,
    /// Longest wait between regular announces, whatever the tracker says.
    pub max_interval: Duration,
    /// The wait after a first failure of a tracker; doubles with each further failure.
    pub backoff_base: Duration,
    /// The longest wait after failures.
    pub backoff_max: Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            min_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(2 * 60 * 60),
            backoff_base: Duration::from_secs(15),
            backoff_max: Duration::from_secs(30 * 60),
        }
    }
}

/// A tracker of the schedule, stable for its life (its place in the tiers may change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackerKey(pub usize);

/// One announce to make now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The tracker to announce to.
    pub tracker: TrackerKey,
    /// Its announce URL.
    pub url: String,
    /// The event to send.
    pub event: Option<AnnounceEvent>,
    /// The `tracker id` it gave before, to send back.
    pub tracker_id: Option<Vec<u8>>,
}

/// What the schedule needs from a successful announce reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// `interval`, seconds.
    pub interval: u32,
    /// `min interval`, seconds.
    pub min_interval: Option<u32>,
    /// `tracker id`.
    pub tracker_id: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
struct Tracker {
    url: String,
    /// An announce to it succeeded (so it knows us and gets `stopped` at the end).
    started: bool,
    /// Failures in a row.
    failures: u32,
    /// Not tried before this (after failures).
    retry_at: Option<Instant>,
    tracker_id: Option<Vec<u8>>,
}

/// `completed` bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Completion {
    NotYet,
    Pending,
    Sent,
}

/// The in-flight announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight {
    tracker: TrackerKey,
    event: Option<AnnounceEvent>,
}

/// The announce schedule of one torrent's trackers.
#[derive(Clone, Debug)]
pub struct Schedule {
    config: ScheduleConfig,
    trackers: Vec<Tracker>,
    tiers: Vec<Vec<TrackerKey>>,
    /// When the next round starts.
    next_round: Instant,
    /// The round in progress: the next (tier, index) to try.
    cursor: Option<(usize, usize)>,
    in_flight: Option<InFlight>,
    completion: Completion,
}

impl Schedule {
    /// A schedule over `tiers` (empty tiers are dropped), each shuffled once (BEP 12); the
    /// first round is due at `now`.
    pub fn new(
        tiers: Vec<Vec<String>>,
        config: ScheduleConfig,
        rng: &mut impl Rng,
        now: Instant,
    ) -> Self {
        let mut trackers = Vec::new();
        let mut keyed = Vec::new();
        for tier in tiers.into_iter().filter(|t| !t.is_empty()) {
            let mut keys: Vec<TrackerKey> = tier
                .into_iter()
                .map(|url| {
                    trackers.push(Tracker {
                        url,
                        started: false,
                        failures: 0,
                        retry_at: None,
                        tracker_id: None,
                    });
                    TrackerKey(trackers.len() - 1)
                })
                .collect();
            keys.shuffle(rng);
            keyed.push(keys);
        }
        Schedule {
            config,
            trackers,
            tiers: keyed,
            next_round: now,
            cursor: None,
            in_flight: None,
            completion: Completion::NotYet,
        }
    }

    /// The tiers in their current order, as URLs.
    pub fn tiers(&self) -> Vec<Vec<&str>> {
        self.tiers
            .iter()
            .map(|tier| tier.iter().map(|&key| self.url(key)).collect())
            .collect()
    }

    /// The URL of a tracker.
    pub fn url(&self, key: TrackerKey) -> &str {
        self.trackers.get(key.0).map_or("", |t| t.url.as_str())
    }

    /// Whether the schedule has no tracker at all.
    pub fn is_empty(&self) -> bool {
        self.trackers.is_empty()
    }

    /// The announce to make now, if one is due and none is in flight.
    pub fn poll(&mut self, now: Instant) -> Option<Job> {
        if self.in_flight.is_some() || self.trackers.is_empty() {
            return None;
        }
        if self.cursor.is_none() {
            if now < self.next_round {
                return None;
            }
            self.cursor = Some((0, 0));
        }
        while let Some((tier, index)) = self.cursor {
            let Some(keys) = self.tiers.get(tier) else {
                // The round failed: wait for the first tracker's backoff to end. If one
                // already has, start over at once: that tracker is not skipped, so the walk
                // ends with a job.
                self.cursor = None;
                self.next_round = self.earliest_retry().unwrap_or(now).max(now);
                if self.next_round > now {
                    return None;
                }
                self.cursor = Some((0, 0));
                continue;
            };
            let Some(&key) = keys.get(index) else {
                self.cursor = Some((tier + 1, 0));
                continue;
            };
            self.cursor = Some((tier, index + 1));
            let Some(tracker) = self.trackers.get(key.0) else {
                continue;
            };
            if tracker.retry_at.is_some_and(|at| at > now) {
                continue;
            }
            let event = self.event_for(tracker);
            self.in_flight = Some(InFlight {
                tracker: key,
                event,
            });
            return Some(Job {
                tracker: key,
                url: tracker.url.clone(),
                event,
                tracker_id: tracker.tracker_id.clone(),
            });
        }
        None
    }

    fn earliest_retry(&self) -> Option<Instant> {
        self.trackers.iter().filter_map(|t| t.retry_at).min()
    }

    fn event_for(&self, tracker: &Tracker) -> Option<AnnounceEvent> {
        if !tracker.started {
            Some(AnnounceEvent::Started)
        } else if self.completion == Completion::Pending {
            Some(AnnounceEvent::Completed)
        } else {
            None
        }
    }

    /// When [`Schedule::poll`] next has something to hand out: `None` while an announce is
    /// in flight or when there is no tracker; a time at or before `now` means "poll now".
    pub fn next_wakeup(&self) -> Option<Instant> {
        if self.in_flight.is_some() || self.trackers.is_empty() {
            return None;
        }
        // Mid-round, `next_round` is the round's start, so already due: the next tracker is
        // tried at once.
        Some(self.next_round)
    }

    /// When the next regular round starts (for the display); meaningless mid-round.
    pub fn next_announce(&self) -> Instant {
        self.next_round
    }

    /// The announce in flight to `tracker` succeeded: it moves to the front of its tier, its
    /// event is done, and the next round is set by the reply's intervals.
    pub fn succeeded(&mut self, tracker: TrackerKey, answer: &Answer, now: Instant) {
        let Some(flight) = self.in_flight.take_if(|f| f.tracker == tracker) else {
            return;
        };
        if let Some(t) = self.trackers.get_mut(tracker.0) {
            t.started = true;
            t.failures = 0;
            t.retry_at = None;
            if answer.tracker_id.is_some() {
                t.tracker_id.clone_from(&answer.tracker_id);
            }
        }
        if flight.event == Some(AnnounceEvent::Completed) {
            self.completion = Completion::Sent;
        }
        for tier in &mut self.tiers {
            if let Some(pos) = tier.iter().position(|&k| k == tracker) {
                tier[..=pos].rotate_right(1);
            }
        }
        self.cursor = None;
        let asked = Duration::from_secs(answer.interval.into());
        let floor = Duration::from_secs(answer.min_interval.unwrap_or(0).into());
        let wait = asked
            .clamp(self.config.min_interval, self.config.max_interval)
            .max(floor.min(self.config.max_interval));
        self.next_round = now + wait;
        if self.completion == Completion::Pending {
            // Completion came while this announce was in flight: report it now.
            self.next_round = now;
        }
    }

    /// The announce in flight to `tracker` failed: it backs off, and the round goes on with
    /// the next tracker.
    pub fn failed(&mut self, tracker: TrackerKey, now: Instant) {
        if self.in_flight.take_if(|f| f.tracker == tracker).is_none() {
            return;
        }
        if let Some(t) = self.trackers.get_mut(tracker.0) {
            t.failures = t.failures.saturating_add(1);
            t.retry_at = Some(now + backoff(&self.config, t.failures));
        }
    }

    /// The download completed: `completed` goes out at once, once.
    pub fn complete(&mut self, now: Instant) {
        if self.completion != Completion::NotYet {
            return;
        }
        self.completion = Completion::Pending;
        if self.in_flight.is_none() && self.cursor.is_none() {
            self.next_round = now;
        }
    }

    /// Ends the schedule: one `stopped` job per tracker that got `started`. `poll` hands out
    /// nothing afterwards.
    pub fn stop_jobs(&mut self) -> Vec<Job> {
        let jobs = self
            .trackers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.started)
            .map(|(i, t)| Job {
                tracker: TrackerKey(i),
                url: t.url.clone(),
                event: Some(AnnounceEvent::Stopped),
                tracker_id: t.tracker_id.clone(),
            })
            .collect();
        self.trackers.clear();
        self.tiers.clear();
        self.in_flight = None;
        self.cursor = None;
        jobs
    }
}

/// The tracker tiers of a torrent (BEP 12): `announce-list` when it has any URL (then
/// `announce` is ignored), else `announce` alone. URLs are trimmed; empty ones, repeats (the
/// first occurrence stays) and tiers left empty are dropped. For a magnet link, pass its
/// `tr` trackers as one tier each, in order.
pub fn tiers(announce: Option<&str>, announce_list: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut keep = |url: &str| {
        let url = url.trim();
        (!url.is_empty() && seen.insert(url.to_owned())).then(|| url.to_owned())
    };
    let listed: Vec<Vec<String>> = announce_list
        .iter()
        .map(|tier| tier.iter().filter_map(|url| keep(url)).collect::<Vec<_>>())
        .filter(|tier| !tier.is_empty())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    announce
        .and_then(keep)
        .map(|url| vec![vec![url]])
        .unwrap_or_default()
}

/// The wait after `failures` failures in a row: `base * 2^(failures-1)`, capped.
pub fn backoff(config: &ScheduleConfig, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    config
        .backoff_base
        .saturating_mul(1 << doublings)
        .min(config.backoff_max)
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
