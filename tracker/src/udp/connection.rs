//! Stateless UDP connection ids (BEP 15): a keyed hash of the client's address and a
//! two-minute time window, so the tracker remembers nothing between connect and announce.
//!
//! Invariants: an id issued at `t` is accepted until at least `t + WINDOW` and at most
//! `t + 2 * WINDOW` (current and previous window), only from the same address and port.
//! The key is SipHash's random per-process key (`RandomState`), so ids cannot be forged
//! without having received one, and a restart invalidates every id (clients reconnect).
//! Pure: time comes in as `now`.

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long one window lasts (BEP 15: a connection id is valid for two minutes).
pub const WINDOW: Duration = Duration::from_secs(120);

/// Issues and checks connection ids.
#[derive(Clone, Debug)]
pub struct ConnectionIds {
    key: std::collections::hash_map::RandomState,
    epoch: Instant,
}

impl ConnectionIds {
    /// A fresh random key; windows count from `epoch`.
    pub fn new(epoch: Instant) -> Self {
        ConnectionIds {
            key: std::collections::hash_map::RandomState::new(),
            epoch,
        }
    }

    /// The id for `addr` at `now`.
    pub fn issue(&self, addr: SocketAddr, now: Instant) -> u64 {
        self.id(addr, self.window(now))
    }

    /// Whether `id` was issued to `addr` in the current or the previous window.
    pub fn check(&self, addr: SocketAddr, id: u64, now: Instant) -> bool {
        let window = self.window(now);
        id == self.id(addr, window) || (window > 0 && id == self.id(addr, window - 1))
    }

    fn window(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / WINDOW.as_secs()
    }

    fn id(&self, addr: SocketAddr, window: u64) -> u64 {
        // Hash the canonical IP so a dual-stack socket's mapped form matches the plain one.
        self.key
            .hash_one((addr.ip().to_canonical(), addr.port(), window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn accepted_in_current_and_previous_window_only() {
        let epoch = Instant::now();
        let ids = ConnectionIds::new(epoch);
        let client = addr("1.2.3.4:5000");
        let issued_at = epoch + Duration::from_secs(100);
        let id = ids.issue(client, issued_at);
        assert!(ids.check(client, id, issued_at));
        // Still fine in the next window (at 120..240 s).
        assert!(ids.check(client, id, epoch + Duration::from_secs(239)));
        // Two windows later it has expired.
        assert!(!ids.check(client, id, epoch + Duration::from_secs(240)));
        // A fresh id is issued then.
        let later = epoch + Duration::from_secs(240);
        assert!(ids.check(client, ids.issue(client, later), later));
    }

    #[test]
    fn bound_to_address_port_and_key() {
        let epoch = Instant::now();
        let ids = ConnectionIds::new(epoch);
        let id = ids.issue(addr("1.2.3.4:5000"), epoch);
        assert!(!ids.check(addr("1.2.3.4:5001"), id, epoch));
        assert!(!ids.check(addr("1.2.3.5:5000"), id, epoch));
        assert!(!ids.check(addr("1.2.3.4:5000"), id ^ 1, epoch));
        // Mapped and plain IPv4 are one client.
        assert!(ids.check(addr("[::ffff:1.2.3.4]:5000"), id, epoch));
        // Another tracker (or a restart) has another key.
        let other = ConnectionIds::new(epoch);
        assert!(!other.check(addr("1.2.3.4:5000"), id, epoch));
    }

    #[test]
    fn clock_before_epoch_is_window_zero() {
        let now = Instant::now();
        let ids = ConnectionIds::new(now + Duration::from_secs(10));
        let client = addr("[::1]:1");
        assert!(ids.check(client, ids.issue(client, now), now));
    }
}
