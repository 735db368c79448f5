//! The address book: peers we know of, which to dial next, backoff and bans.
//!
//! Invariants: an address is in at most one of idle, dialling or connected; a banned or
//! own address is never handed out to dial again; at most [`MAX_KNOWN`] addresses are
//! kept; an address that failed [`MAX_FAILURES`] times in a row is given up.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::Reason;

/// Addresses kept at most (the rest of a large tracker or DHT reply is dropped).
pub const MAX_KNOWN: usize = 2000;
/// Dials or short-lived connections in a row after which an address is given up.
pub const MAX_FAILURES: u32 = 5;
/// The first retry delay; each further failure doubles it.
pub const RETRY_BASE: Duration = Duration::from_secs(15);
/// A given-up address found again (tracker, DHT) after this long gets another chance.
pub const REVIVE_AFTER: Duration = Duration::from_secs(600);
/// A connection that lasted this long resets the failure count.
pub const GOOD_CONNECTION: Duration = Duration::from_secs(60);
/// Dials in progress at most (half-open connections).
pub const MAX_HALF_OPEN: usize = 8;

/// Where an address stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Idle,
    Dialling,
    Connected,
    /// Failed too often, or closed for a reason that makes retrying pointless.
    GivenUp,
}

#[derive(Clone, Debug)]
struct Entry {
    status: Status,
    failures: u32,
    retry_at: Option<Instant>,
    /// When it was given up.
    given_up_at: Option<Instant>,
    /// The peer had every piece when we last saw it.
    seed: bool,
}

impl Entry {
    fn new() -> Self {
        Entry {
            status: Status::Idle,
            failures: 0,
            retry_at: None,
            given_up_at: None,
            seed: false,
        }
    }
}

/// Known peer addresses; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct AddressBook {
    entries: BTreeMap<SocketAddr, Entry>,
    banned_ips: HashSet<IpAddr>,
    banned_addrs: HashSet<SocketAddr>,
}

impl AddressBook {
    /// Bans an address for good: a loopback address by its port too (several local peers
    /// share the IP), any other by its IP.
    pub fn ban(&mut self, addr: SocketAddr) {
        if addr.ip().is_loopback() || addr.ip().is_unspecified() {
            self.banned_addrs.insert(addr);
        } else {
            self.banned_ips.insert(addr.ip());
        }
        let ips = &self.banned_ips;
        let addrs = &self.banned_addrs;
        self.entries
            .retain(|a, _| !ips.contains(&a.ip()) && !addrs.contains(a));
    }

    /// Whether an address is banned.
    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.banned_addrs.contains(&addr) || self.banned_ips.contains(&addr.ip())
    }

    /// Learns addresses (banned and port-0 addresses are skipped); one given up at least
    /// [`REVIVE_AFTER`] ago gets one more try.
    pub fn add(&mut self, addrs: impl IntoIterator<Item = SocketAddr>, now: Instant) {
        for addr in addrs {
            if addr.port() == 0 || addr.ip().is_unspecified() || self.is_banned(addr) {
                continue;
            }
            if let Some(e) = self.entries.get_mut(&addr) {
                if e.status == Status::GivenUp
                    && e.given_up_at
                        .is_some_and(|at| now.saturating_duration_since(at) >= REVIVE_AFTER)
                {
                    e.status = Status::Idle;
                    e.failures = MAX_FAILURES - 1;
                    e.retry_at = None;
                }
                continue;
            }
            if self.entries.len() < MAX_KNOWN {
                self.entries.insert(addr, Entry::new());
            }
        }
    }

    /// Never dials this address again (it is our own).
    pub fn forget(&mut self, addr: SocketAddr) {
        self.banned_addrs.insert(addr);
        self.entries.remove(&addr);
    }

    /// Addresses being dialled.
    pub fn dialling(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.status == Status::Dialling)
            .count()
    }

    /// Picks up to `room` addresses to dial now (fewest failures first) and marks them
    /// dialling; `skip_seeds` leaves out addresses last seen as seeds.
    pub fn next_dials(&mut self, room: usize, skip_seeds: bool, now: Instant) -> Vec<SocketAddr> {
        if room == 0 {
            return Vec::new();
        }
        let mut ready: Vec<(u32, SocketAddr)> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.status == Status::Idle
                    && e.retry_at.is_none_or(|at| at <= now)
                    && !(skip_seeds && e.seed)
            })
            .map(|(a, e)| (e.failures, *a))
            .collect();
        ready.sort();
        ready.truncate(room);
        for (_, addr) in &ready {
            if let Some(e) = self.entries.get_mut(addr) {
                e.status = Status::Dialling;
            }
        }
        ready.into_iter().map(|(_, a)| a).collect()
    }

    /// Picks the addresses to dial now so that open connections (`open`) and dials stay
    /// within `max_peers`, with at most [`MAX_HALF_OPEN`] dials in flight.
    pub fn dials_within(
        &mut self,
        max_peers: usize,
        open: usize,
        skip_seeds: bool,
        now: Instant,
    ) -> Vec<SocketAddr> {
        let dialling = self.dialling();
        let room = max_peers
            .saturating_sub(open + dialling)
            .min(MAX_HALF_OPEN.saturating_sub(dialling));
        self.next_dials(room, skip_seeds, now)
    }

    /// A connection we dialled was refused after its handshake for `reason`: our own
    /// address is never dialled again, a full house is retried later, anything else is
    /// given up.
    pub fn refused(&mut self, addr: SocketAddr, reason: &Reason, now: Instant) {
        match reason {
            Reason::Ourselves => self.forget(addr),
            reason => {
                let retry = *reason == Reason::TooManyPeers;
                self.disconnected(addr, Duration::ZERO, retry, false, now);
            }
        }
    }

    /// The earliest time a backed-off address may be dialled again.
    #[cfg(test)]
    pub fn next_retry(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| e.status == Status::Idle)
            .filter_map(|e| e.retry_at)
            .min()
    }

    /// A dial failed: back off, or give up after [`MAX_FAILURES`].
    pub fn dial_failed(&mut self, addr: SocketAddr, now: Instant) {
        if let Some(e) = self.entries.get_mut(&addr) {
            e.failures += 1;
            back_off(e, now);
        }
    }

    /// A connection to this address is up (dialled, or its listen address learnt).
    pub fn connected(&mut self, addr: SocketAddr) {
        if self.is_banned(addr) {
            return;
        }
        if self.entries.len() < MAX_KNOWN || self.entries.contains_key(&addr) {
            let e = self.entries.entry(addr).or_insert_with(Entry::new);
            e.status = Status::Connected;
        }
    }

    /// The connection to `addr` closed after lasting `lasted`; `retry` false gives it up
    /// (the peer was refused for good); `seed` records whether it had every piece.
    pub fn disconnected(
        &mut self,
        addr: SocketAddr,
        lasted: Duration,
        retry: bool,
        seed: bool,
        now: Instant,
    ) {
        if let Some(e) = self.entries.get_mut(&addr) {
            e.seed = seed;
            if !retry {
                e.status = Status::GivenUp;
                e.given_up_at = Some(now);
                return;
            }
            e.failures = if lasted >= GOOD_CONNECTION {
                1
            } else {
                e.failures + 1
            };
            back_off(e, now);
        }
    }

    /// The addresses worth dialling some day: known, not given up, not banned.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.entries
            .iter()
            .filter(|(_, e)| e.status != Status::GivenUp)
            .map(|(a, _)| *a)
            .collect()
    }

    /// Whether we know of the address and it is not given up or banned.
    #[cfg(test)]
    pub fn knows(&self, addr: SocketAddr) -> bool {
        self.entries
            .get(&addr)
            .is_some_and(|e| e.status != Status::GivenUp)
    }
}

/// After `e.failures` failures: idle again after a doubling delay, or given up.
fn back_off(e: &mut Entry, now: Instant) {
    if e.failures >= MAX_FAILURES {
        e.status = Status::GivenUp;
        e.retry_at = None;
        e.given_up_at = Some(now);
        return;
    }
    e.status = Status::Idle;
    let factor = 1u32 << e.failures.saturating_sub(1).min(10);
    e.retry_at = Some(now + RETRY_BASE * factor);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn dials_each_address_once_and_backs_off() {
        let t0 = Instant::now();
        let mut book = AddressBook::default();
        let a = addr("10.0.0.1:6881");
        book.add([a, a, addr("10.0.0.2:0")], t0);
        assert_eq!(book.next_dials(8, false, t0), vec![a]);
        assert_eq!(book.next_dials(8, false, t0), vec![]);
        assert_eq!(book.dialling(), 1);
        book.dial_failed(a, t0);
        assert_eq!(book.next_dials(8, false, t0 + RETRY_BASE / 2), vec![]);
        assert_eq!(book.next_retry(), Some(t0 + RETRY_BASE));
        assert_eq!(book.next_dials(8, false, t0 + RETRY_BASE), vec![a]);
        // Second failure: twice the delay.
        book.dial_failed(a, t0);
        assert_eq!(book.next_dials(8, false, t0 + RETRY_BASE), vec![]);
        assert_eq!(book.next_dials(8, false, t0 + RETRY_BASE * 2), vec![a]);
    }

    #[test]
    fn dials_stay_within_the_peer_and_half_open_limits() {
        let t0 = Instant::now();
        let mut book = AddressBook::default();
        book.add((1..=40).map(|i| addr(&format!("10.0.0.{i}:6881"))), t0);
        // 30 peers allowed, 25 open: 5 dials.
        assert_eq!(book.dials_within(30, 25, false, t0).len(), 5);
        // Those 5 are still in flight: 3 more reach the half-open cap of 8.
        assert_eq!(
            book.dials_within(100, 0, false, t0).len(),
            MAX_HALF_OPEN - 5
        );
        assert_eq!(book.dials_within(100, 0, false, t0), vec![]);
        assert_eq!(book.dialling(), MAX_HALF_OPEN);
    }

    #[test]
    fn refusals_forget_ourselves_retry_a_full_house_and_give_up_the_rest() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(100_000);
        let mut book = AddressBook::default();
        let (me, full, dup) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"), addr("10.0.0.3:3"));
        book.add([me, full, dup], t0);
        assert_eq!(book.dials_within(10, 0, false, t0).len(), 3);
        book.refused(me, &Reason::Ourselves, t0);
        book.refused(full, &Reason::TooManyPeers, t0);
        book.refused(dup, &Reason::Duplicate, t0);
        assert!(book.is_banned(me));
        assert!(book.knows(full));
        assert!(!book.knows(dup));
        assert_eq!(book.dials_within(10, 0, false, later), vec![full]);
        // Found again later: our own address stays out.
        book.add([me], later);
        assert!(!book.knows(me));
    }

    #[test]
    fn gives_up_after_max_failures() {
        let t0 = Instant::now();
        let mut book = AddressBook::default();
        let a = addr("10.0.0.1:6881");
        book.add([a], t0);
        for _ in 0..MAX_FAILURES {
            let later = t0 + Duration::from_secs(100_000);
            assert_eq!(book.next_dials(1, false, later), vec![a]);
            book.dial_failed(a, t0);
        }
        assert_eq!(
            book.next_dials(1, false, t0 + Duration::from_secs(1_000_000)),
            vec![]
        );
        assert!(!book.knows(a));
        // Found again soon: still given up; much later: one more try.
        book.add([a], t0 + REVIVE_AFTER / 2);
        assert!(!book.knows(a));
        book.add([a], t0 + REVIVE_AFTER);
        assert_eq!(book.next_dials(1, false, t0 + REVIVE_AFTER), vec![a]);
        book.dial_failed(a, t0 + REVIVE_AFTER);
        assert!(!book.knows(a));
    }

    #[test]
    fn banned_addresses_are_never_dialled() {
        let t0 = Instant::now();
        let mut book = AddressBook::default();
        let remote = addr("10.0.0.1:6881");
        let local = addr("127.0.0.1:6881");
        book.add([remote, local, addr("127.0.0.1:6882")], t0);
        book.ban(addr("10.0.0.1:9999"));
        book.ban(local);
        book.add([remote, local, addr("10.0.0.1:7000")], t0);
        assert_eq!(book.next_dials(8, false, t0), vec![addr("127.0.0.1:6882")]);
        assert!(book.is_banned(remote) && book.is_banned(local));
    }

    #[test]
    fn seeds_are_skipped_when_asked_and_long_connections_reset_failures() {
        let t0 = Instant::now();
        let mut book = AddressBook::default();
        let a = addr("10.0.0.1:6881");
        book.add([a], t0);
        assert_eq!(book.next_dials(1, false, t0), vec![a]);
        book.connected(a);
        book.disconnected(a, GOOD_CONNECTION, true, true, t0);
        let later = t0 + RETRY_BASE;
        assert_eq!(book.next_dials(1, true, later), vec![]);
        assert_eq!(book.next_dials(1, false, later), vec![a]);
        book.disconnected(a, Duration::ZERO, false, false, t0);
        assert_eq!(book.next_dials(1, false, later), vec![]);
    }
}
