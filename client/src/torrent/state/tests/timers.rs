//! Timers and lifecycle: keep-alives, time-outs, stalled requests, seeds, stop, storage failure.

use super::*;
#[test]
fn keep_alives_timeouts_and_deadlines() {
    let mut h = Harness::leecher();
    h.connect(1, 1, true, false);
    h.recv(1, Message::HaveNone);
    let start = h.now;
    assert!(h.state.next_deadline() <= start + Duration::from_secs(1));
    let mut saw_keepalive = false;
    let mut timed_out = None;
    for _ in 0..130 {
        let out = h.advance(Duration::from_secs(1));
        saw_keepalive |= sent(&out, 1).contains(&Message::KeepAlive);
        if let Some(r) = disconnected(&out, 1) {
            timed_out = Some((r, h.now - start));
            break;
        }
        assert!(h.state.next_deadline() <= h.now + Duration::from_secs(1));
    }
    assert!(saw_keepalive);
    let (reason, after) = timed_out.expect("idle peer closed");
    assert_eq!(reason, Reason::Timeout);
    assert!(after >= Duration::from_secs(120));
}

#[test]
fn stalled_requests_are_cancelled_and_asked_elsewhere() {
    let (mut h, out) = leecher_with_seed_peer();
    let first = requests(&out, 1);
    h.connect(2, 2, true, false);
    h.recv(2, Message::HaveAll);
    h.recv(2, Message::Unchoke);
    // Peer 2 keeps sending keep-alives; peer 1 sends keep-alives but no block.
    let mut moved = Vec::new();
    for _ in 0..61 {
        h.recv(1, Message::KeepAlive);
        h.recv(2, Message::KeepAlive);
        let out = h.advance(Duration::from_secs(1));
        moved.extend(requests(&out, 2));
        if sent(&out, 1)
            .iter()
            .any(|m| matches!(m, Message::Cancel(_)))
        {
            break;
        }
    }
    assert!(
        first.iter().any(|b| moved.contains(b)),
        "requests moved to peer 2"
    );
}

#[test]
fn seeds_drop_seeds() {
    let mut h = Harness::seed();
    h.connect(1, 1, true, false);
    h.recv(1, Message::HaveAll);
    let out = h.advance(Duration::from_secs(1));
    assert_eq!(disconnected(&out, 1), Some(Reason::NotUseful));
}

#[test]
fn stop_announces_and_closes_everything() {
    let (mut h, _) = leecher_with_seed_peer();
    h.connect(2, 2, false, false);
    let out = h.handle(Event::Stop);
    assert!(matches!(out[0], Action::Announce(AnnounceEvent::Stopped)));
    assert_eq!(disconnected(&out, 1), Some(Reason::Shutdown));
    assert_eq!(disconnected(&out, 2), Some(Reason::Shutdown));
    assert_eq!(
        disconnected(&h.connect(3, 3, false, false), 3),
        Some(Reason::Shutdown)
    );
}

#[test]
fn storage_failure_is_fatal_and_stops_requests() {
    let (mut h, out) = leecher_with_seed_peer();
    let b = requests(&out, 1)[0];
    let out = h.handle(Event::StorageFailed("disk full".into()));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Fatal(m) if m == "disk full"))
    );
    assert!(sent(&out, 1).contains(&Message::NotInterested));
    let out = h.recv(1, piece(b, 1));
    assert!(requests(&out, 1).is_empty());
    let again = h.handle(Event::StorageFailed("disk full".into()));
    assert!(
        !again.iter().any(|a| matches!(a, Action::Fatal(_))),
        "fatal once"
    );
}

#[test]
fn a_block_the_peer_skipped_is_asked_again() {
    let (mut h, out) = leecher_with_seed_peer();
    let reqs = requests(&out, 1);
    let (skipped, served) = (reqs[0], reqs[1]);
    h.now += Duration::from_secs(10);
    let out = h.recv(1, piece(served, 1));
    let mut later = requests(&out, 1);
    // The peer keeps serving the later requests, never the skipped one.
    let mut cancelled = false;
    for _ in 0..40 {
        let out = h.advance(Duration::from_secs(1));
        let out2 = later
            .pop()
            .map(|b| h.recv(1, piece(b, 1)))
            .unwrap_or_default();
        later.extend(requests(&out2, 1));
        later.extend(requests(&out, 1));
        if sent(&out, 1).contains(&Message::Cancel(skipped)) {
            cancelled = true;
            break;
        }
    }
    assert!(cancelled, "skipped block given up");
}

#[test]
fn deadlines_move_ahead_of_every_tick_even_when_stopped() {
    let (mut h, _) = leecher_with_seed_peer();
    for stop in [false, true] {
        if stop {
            h.handle(Event::Stop);
        }
        for _ in 0..30 {
            h.advance(Duration::from_millis(700));
            assert!(h.state.next_deadline() > h.now, "deadline in the past");
        }
    }
}

#[test]
fn a_lone_seed_that_stalled_is_asked_again() {
    let (mut h, out) = leecher_with_seed_peer();
    let first = requests(&out, 1);
    let mut cancelled_at = None;
    let mut asked_again = Vec::new();
    for s in 0..120 {
        h.recv(1, Message::KeepAlive);
        let out = h.advance(Duration::from_secs(1));
        if sent(&out, 1)
            .iter()
            .any(|m| matches!(m, Message::Cancel(_)))
        {
            cancelled_at.get_or_insert(s);
        }
        if cancelled_at.is_some() {
            asked_again.extend(requests(&out, 1));
        }
    }
    assert!(cancelled_at.is_some(), "stalled requests given up");
    assert!(
        first.iter().any(|b| asked_again.contains(b)),
        "the only source is asked again: {asked_again:?}"
    );
}
