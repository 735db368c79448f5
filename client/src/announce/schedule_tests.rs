//! Tests of the announce schedule: tiers, events, intervals, backoff, and a proptest of its
//! invariants over random sequences of answers and failures.

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn tiers(spec: &[&[&str]]) -> Vec<Vec<String>> {
    spec.iter()
        .map(|tier| tier.iter().map(|url| (*url).to_owned()).collect())
        .collect()
}

/// A schedule whose tiers keep their given order (the shuffle is checked separately).
fn unshuffled(spec: &[&[&str]], now: Instant) -> Schedule {
    let mut schedule = Schedule::new(
        tiers(spec),
        ScheduleConfig::default(),
        &mut StdRng::seed_from_u64(0),
        now,
    );
    // Undo the shuffle: sort each tier by URL (the tests name trackers in order).
    for tier in &mut schedule.tiers {
        tier.sort_by(|a, b| schedule.trackers[a.0].url.cmp(&schedule.trackers[b.0].url));
    }
    schedule
}

fn answer(interval: u32) -> Answer {
    Answer {
        interval,
        ..Answer::default()
    }
}

#[test]
fn tiers_come_from_announce_list_else_announce() {
    let list = tiers(&[&["a", " b ", "a"], &["", "c"], &["b"], &[]]);
    assert_eq!(
        super::tiers(Some("x"), &list),
        vec![vec!["a", "b"], vec!["c"]],
        "announce-list wins; repeats, blanks and empty tiers go"
    );
    assert_eq!(super::tiers(Some(" x "), &[]), vec![vec!["x"]]);
    assert_eq!(super::tiers(Some("x"), &tiers(&[&[""]])), vec![vec!["x"]]);
    assert!(super::tiers(None, &[]).is_empty());
    assert!(super::tiers(Some(""), &[]).is_empty());
}

#[test]
fn each_tier_is_shuffled_within_itself() {
    let spec: Vec<String> = (0..20)
        .map(|i| format!("http://t{i:02}/announce"))
        .collect();
    let input = vec![spec.clone(), vec!["udp://other:1".to_owned()]];
    let mut orders = HashSet::new();
    for seed in 0..10 {
        let schedule = Schedule::new(
            input.clone(),
            ScheduleConfig::default(),
            &mut StdRng::seed_from_u64(seed),
            Instant::now(),
        );
        let got = schedule.tiers();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], vec!["udp://other:1"]);
        let first: BTreeSet<&str> = got[0].iter().copied().collect();
        assert_eq!(first, spec.iter().map(String::as_str).collect());
        orders.insert(got[0].join(","));
    }
    assert!(orders.len() > 1, "the shuffle never changed the order");
}

#[test]
fn empty_tiers_are_dropped_and_no_trackers_means_no_jobs() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&[], &[]], now);
    assert!(schedule.is_empty());
    assert_eq!(schedule.poll(now), None);
    assert_eq!(schedule.next_wakeup(), None);
    let schedule = unshuffled(&[&[], &["a"]], now);
    assert_eq!(schedule.tiers(), vec![vec!["a"]]);
}

#[test]
fn first_announce_is_started_and_one_at_a_time() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&["a", "b"]], now);
    let job = schedule.poll(now).expect("a job at once");
    assert_eq!(job.url, "a");
    assert_eq!(job.event, Some(AnnounceEvent::Started));
    assert_eq!(job.tracker_id, None);
    assert_eq!(schedule.poll(now), None, "one announce in flight at most");
    assert_eq!(schedule.next_wakeup(), None);
}

#[test]
fn failures_walk_the_tier_then_the_next_tier() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&["a", "b"], &["c"]], now);
    let mut tried = Vec::new();
    for _ in 0..3 {
        let job = schedule.poll(now).expect("next tracker");
        tried.push(job.url.clone());
        schedule.failed(job.tracker, now);
    }
    assert_eq!(tried, ["a", "b", "c"]);
    // All backing off: nothing until the first backoff ends.
    assert_eq!(schedule.poll(now), None);
    assert_eq!(schedule.next_wakeup(), Some(now + secs(15)));
    let later = now + secs(15);
    let job = schedule.poll(later).expect("retry after the backoff");
    assert_eq!(job.url, "a");
    assert_eq!(job.event, Some(AnnounceEvent::Started));
}

#[test]
fn the_tracker_that_answers_moves_to_the_front_of_its_tier() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&["a", "b", "c"], &["d"]], now);
    for _ in 0..2 {
        let job = schedule.poll(now).expect("job");
        schedule.failed(job.tracker, now);
    }
    let job = schedule.poll(now).expect("job");
    assert_eq!(job.url, "c");
    schedule.succeeded(job.tracker, &answer(1800), now);
    assert_eq!(schedule.tiers(), vec![vec!["c", "a", "b"], vec!["d"]]);
    // The next round starts with it.
    let next = now + secs(1800);
    assert_eq!(schedule.next_wakeup(), Some(next));
    assert_eq!(schedule.poll(next - secs(1)), None);
    let job = schedule.poll(next).expect("regular announce");
    assert_eq!((job.url.as_str(), job.event), ("c", None));
}

#[test]
fn a_lower_tier_answers_but_the_next_round_starts_at_the_first_tier() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&["a"], &["b"]], now);
    let job = schedule.poll(now).expect("a");
    schedule.failed(job.tracker, now);
    let job = schedule.poll(now).expect("b");
    assert_eq!(job.url, "b");
    schedule.succeeded(job.tracker, &answer(600), now);
    let next = now + secs(600);
    let job = schedule.poll(next).expect("a again");
    assert_eq!(job.url, "a");
    assert_eq!(
        job.event,
        Some(AnnounceEvent::Started),
        "a never got started"
    );
}

#[test]
fn intervals_are_clamped_and_respect_min_interval() {
    let now = Instant::now();
    let config = ScheduleConfig::default();
    let cases = [
        (Answer::default(), config.min_interval),
        (answer(5), config.min_interval),
        (answer(1800), secs(1800)),
        (answer(u32::MAX), config.max_interval),
        (
            Answer {
                interval: 600,
                min_interval: Some(900),
                tracker_id: None,
            },
            secs(900),
        ),
        (
            Answer {
                interval: 600,
                min_interval: Some(u32::MAX),
                tracker_id: None,
            },
            config.max_interval,
        ),
    ];
    for (reply, wait) in cases {
        let mut schedule = unshuffled(&[&["a"]], now);
        let job = schedule.poll(now).expect("job");
        schedule.succeeded(job.tracker, &reply, now);
        assert_eq!(schedule.next_wakeup(), Some(now + wait), "{reply:?}");
    }
}

#[test]
fn backoff_doubles_from_the_base_up_to_the_cap() {
    let config = ScheduleConfig::default();
    let waits: Vec<u64> = (1..=10).map(|n| backoff(&config, n).as_secs()).collect();
    assert_eq!(waits, [15, 30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
    assert_eq!(backoff(&config, u32::MAX), config.backoff_max);
    assert_eq!(backoff(&config, 0), config.backoff_base);
}

#[test]
fn repeated_failures_of_one_tracker_back_off_longer() {
    let mut now = Instant::now();
    let mut schedule = unshuffled(&[&["a"]], now);
    let mut waits = Vec::new();
    for _ in 0..4 {
        let job = schedule.poll(now).expect("retry");
        schedule.failed(job.tracker, now);
        assert_eq!(schedule.poll(now), None);
        let wake = schedule.next_wakeup().expect("a retry time");
        waits.push((wake - now).as_secs());
        now = wake;
    }
    assert_eq!(waits, [15, 30, 60, 120]);
    // A success resets the count.
    let job = schedule.poll(now).expect("retry");
    schedule.succeeded(job.tracker, &answer(60), now);
    now += secs(60);
    let job = schedule.poll(now).expect("regular");
    schedule.failed(job.tracker, now);
    // Mid-round the schedule asks to be polled at once; the poll ends the round.
    assert!(schedule.next_wakeup().is_some_and(|w| w <= now));
    assert_eq!(schedule.poll(now), None);
    assert_eq!(schedule.next_wakeup(), Some(now + secs(15)));
}

#[test]
fn completed_goes_out_at_once_and_only_once() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&["a"]], now);
    let job = schedule.poll(now).expect("started");
    schedule.succeeded(job.tracker, &answer(1800), now);
    let t1 = now + secs(100);
    assert_eq!(schedule.poll(t1), None);
    schedule.complete(t1);
    let job = schedule.poll(t1).expect("completed at once");
    assert_eq!(job.event, Some(AnnounceEvent::Completed));
    // Failing keeps it pending for the retry.
    schedule.failed(job.tracker, t1);
    let t2 = t1 + secs(15);
    let job = schedule.poll(t2).expect("retry");
    assert_eq!(job.event, Some(AnnounceEvent::Completed));
    schedule.succeeded(job.tracker, &answer(1800), t2);
    schedule.complete(t2);
    assert_eq!(
        schedule.poll(t2),
        None,
        "a second complete() changes nothing"
    );
    let job = schedule.poll(t2 + secs(1800)).expect("regular");
    assert_eq!(job.event, None);
}

#[test]
fn completion_during_an_announce_is_reported_right_after_it() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&["a"]], now);
    let job = schedule.poll(now).expect("started");
    schedule.complete(now);
    schedule.succeeded(job.tracker, &answer(1800), now);
    let job = schedule.poll(now).expect("completed right after");
    assert_eq!(job.event, Some(AnnounceEvent::Completed));
}

#[test]
fn a_tracker_not_yet_started_gets_started_before_completed() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&["a"]], now);
    schedule.complete(now);
    let job = schedule.poll(now).expect("job");
    assert_eq!(job.event, Some(AnnounceEvent::Started));
    schedule.succeeded(job.tracker, &answer(1800), now);
    let job = schedule.poll(now).expect("then completed");
    assert_eq!(job.event, Some(AnnounceEvent::Completed));
}

#[test]
fn tracker_id_is_remembered_per_tracker_and_echoed() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&["a"], &["b"]], now);
    let job = schedule.poll(now).expect("a");
    let reply = Answer {
        interval: 60,
        min_interval: None,
        tracker_id: Some(b"id-a".to_vec()),
    };
    schedule.succeeded(job.tracker, &reply, now);
    let t1 = now + secs(60);
    let job = schedule.poll(t1).expect("a again");
    assert_eq!(job.tracker_id.as_deref(), Some(&b"id-a"[..]));
    // A reply without an id keeps the old one.
    schedule.succeeded(job.tracker, &answer(60), t1);
    let t2 = t1 + secs(60);
    let job = schedule.poll(t2).expect("a again");
    assert_eq!(job.tracker_id.as_deref(), Some(&b"id-a"[..]));
    // Another tracker has its own (none).
    schedule.failed(job.tracker, t2);
    let job = schedule.poll(t2).expect("b");
    assert_eq!((job.url.as_str(), job.tracker_id), ("b", None));
}

#[test]
fn stopped_goes_only_to_started_trackers_and_ends_the_schedule() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&["a", "b"], &["c"]], now);
    let job = schedule.poll(now).expect("a");
    schedule.failed(job.tracker, now);
    let job = schedule.poll(now).expect("b");
    let reply = Answer {
        interval: 60,
        min_interval: None,
        tracker_id: Some(b"tid".to_vec()),
    };
    schedule.succeeded(job.tracker, &reply, now);
    let stops = schedule.stop_jobs();
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].url, "b");
    assert_eq!(stops[0].event, Some(AnnounceEvent::Stopped));
    assert_eq!(stops[0].tracker_id.as_deref(), Some(&b"tid"[..]));
    assert_eq!(schedule.poll(now + secs(10_000)), None);
    assert_eq!(schedule.next_wakeup(), None);
    assert!(schedule.stop_jobs().is_empty());
}

#[test]
fn answers_for_other_trackers_are_ignored() {
    let now = Instant::now();
    let mut schedule = unshuffled(&[&["a", "b"]], now);
    let job = schedule.poll(now).expect("a");
    let other = TrackerKey(job.tracker.0 ^ 1);
    schedule.succeeded(other, &answer(60), now);
    schedule.failed(other, now);
    assert_eq!(schedule.poll(now), None, "still in flight");
    schedule.succeeded(job.tracker, &answer(60), now);
    assert_eq!(schedule.next_wakeup(), Some(now + secs(60)));
}

/// One step of the proptest.
#[derive(Clone, Debug)]
enum Op {
    Poll,
    Succeed {
        interval: u32,
        min_interval: Option<u32>,
        tracker_id: bool,
    },
    Fail,
    Complete,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Poll),
        3 => (0u32..5000, proptest::option::of(0u32..5000), any::<bool>()).prop_map(
            |(interval, min_interval, tracker_id)| Op::Succeed { interval, min_interval, tracker_id }
        ),
        3 => Just(Op::Fail),
        1 => Just(Op::Complete),
        2 => (0u64..4000).prop_map(Op::Advance),
    ]
}

fn tier_spec() -> impl Strategy<Value = Vec<Vec<String>>> {
    proptest::collection::vec(1usize..4, 0..4).prop_map(|sizes| {
        let mut n = 0;
        sizes
            .into_iter()
            .map(|size| {
                (0..size)
                    .map(|_| {
                        n += 1;
                        format!("t{n}")
                    })
                    .collect()
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn schedule_invariants_hold(spec in tier_spec(), ops in proptest::collection::vec(op(), 0..200), seed: u64) {
        let config = ScheduleConfig::default();
        let start = Instant::now();
        let mut now = start;
        let mut schedule = Schedule::new(spec.clone(), config.clone(), &mut StdRng::seed_from_u64(seed), now);
        let tier_sets: Vec<BTreeSet<String>> = spec.iter().map(|t| t.iter().cloned().collect()).collect();
        let mut in_flight: Option<Job> = None;
        let mut started: HashSet<String> = HashSet::new();
        let mut completion_asked = false;
        let mut completed_sent = 0;
        for op in ops {
            match op {
                Op::Poll => {
                    let job = schedule.poll(now);
                    if in_flight.is_some() {
                        prop_assert!(job.is_none(), "a second job while one is in flight");
                    }
                    match job {
                        Some(job) => {
                            prop_assert_ne!(job.event, Some(AnnounceEvent::Stopped));
                            match job.event {
                                Some(AnnounceEvent::Started) => prop_assert!(!started.contains(&job.url)),
                                Some(AnnounceEvent::Completed) => {
                                    prop_assert!(completion_asked && completed_sent == 0);
                                    prop_assert!(started.contains(&job.url));
                                }
                                _ => prop_assert!(started.contains(&job.url)),
                            }
                            in_flight = Some(job);
                        }
                        None if in_flight.is_none() && !schedule.is_empty() => {
                            // Nothing now, so something later.
                            let wake = schedule.next_wakeup();
                            prop_assert!(wake.is_some_and(|w| w > now), "{wake:?} at {now:?}");
                        }
                        None => {}
                    }
                }
                Op::Succeed { interval, min_interval, tracker_id } => {
                    if let Some(job) = in_flight.take() {
                        let reply = Answer {
                            interval,
                            min_interval,
                            tracker_id: tracker_id.then(|| job.url.as_bytes().to_vec()),
                        };
                        schedule.succeeded(job.tracker, &reply, now);
                        started.insert(job.url.clone());
                        if job.event == Some(AnnounceEvent::Completed) {
                            completed_sent += 1;
                        }
                        let tiers = schedule.tiers();
                        prop_assert!(tiers.iter().any(|t| t.first() == Some(&job.url.as_str())));
                        let wake = schedule.next_wakeup().expect("a next round");
                        let pending = completion_asked && completed_sent == 0;
                        if !pending {
                            prop_assert!(wake >= now + config.min_interval);
                            prop_assert!(wake <= now + config.max_interval);
                        }
                    }
                }
                Op::Fail => {
                    if let Some(job) = in_flight.take() {
                        schedule.failed(job.tracker, now);
                    }
                }
                Op::Complete => {
                    schedule.complete(now);
                    completion_asked = true;
                }
                Op::Advance(s) => now += secs(s),
            }
            // The tiers always hold the trackers they started with.
            let tiers = schedule.tiers();
            prop_assert_eq!(tiers.len(), tier_sets.len());
            for (tier, set) in tiers.iter().zip(&tier_sets) {
                prop_assert_eq!(tier.len(), set.len());
                let got: BTreeSet<String> = tier.iter().map(|s| (*s).to_owned()).collect();
                prop_assert_eq!(&got, set);
            }
        }
        let stops = schedule.stop_jobs();
        let stopped: HashSet<String> = stops.iter().map(|j| j.url.clone()).collect();
        prop_assert_eq!(stopped, started);
        prop_assert!(stops.iter().all(|j| j.event == Some(AnnounceEvent::Stopped)));
    }
}
