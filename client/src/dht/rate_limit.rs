//! A per-address token bucket for incoming packets that are not answers to our queries.
//!
//! Invariants: each address may send `burst` packets at once and `per_second` after that;
//! at most `max_tracked` addresses are remembered (idle ones are forgotten first, and when
//! all are busy the map is reset rather than grown), so a flood from many addresses costs
//! bounded memory. Pure: time comes in.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// Token buckets keyed by source address.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    buckets: HashMap<SocketAddr, (f64, Instant)>,
    burst: f64,
    per_second: f64,
    max_tracked: usize,
}

impl RateLimiter {
    /// A limiter letting each address send `burst` packets at once and `per_second` after.
    pub fn new(burst: u32, per_second: u32, max_tracked: usize) -> Self {
        RateLimiter {
            buckets: HashMap::new(),
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second),
            max_tracked: max_tracked.max(1),
        }
    }

    /// Whether a packet from `addr` at `now` is within its allowance (and spends it).
    pub fn allow(&mut self, addr: SocketAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&addr) && self.buckets.len() >= self.max_tracked {
            self.forget_idle(now);
        }
        let (burst, rate) = (self.burst, self.per_second);
        let (tokens, last) = self.buckets.entry(addr).or_insert((burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn forget_idle(&mut self, now: Instant) {
        let (burst, rate) = (self.burst, self.per_second);
        self.buckets.retain(|_, (tokens, last)| {
            *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst
        });
        if self.buckets.len() >= self.max_tracked {
            self.buckets.clear();
        }
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(5, 2, 100);
        assert_eq!((0..10).filter(|_| limiter.allow(addr(1), t0)).count(), 5);
        assert!(limiter.allow(addr(2), t0), "other addresses unaffected");
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..10).filter(|_| limiter.allow(addr(1), t1)).count(), 2);
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(5, 2, 50);
        for port in 0..1000 {
            limiter.allow(addr(port), t0);
            assert!(limiter.tracked() <= 50);
        }
    }
}
