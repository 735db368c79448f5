//! Transfer rates and request pipelining, as pure values: time is passed in.
//!
//! [`Rate`] is an exponentially decaying average: a steady stream of `r` bytes/s reads as
//! `r` once a few time constants have passed, and a stream that stops decays towards 0.
//! [`RequestQueue`] turns a peer's rate into how many block requests to keep in flight:
//! enough to cover the target latency, clamped, and never more than the peer's `reqq`
//! (BEP 10 extended handshake).

use std::time::{Duration, Instant};

use rill_common::pieces::BLOCK_SIZE;

/// An exponentially decaying average of bytes per second; time is passed in.
#[derive(Clone, Debug)]
pub struct Rate {
    tau: f64,
    /// Decayed sum of bytes as of `at`; equals `rate * tau` in steady state.
    acc: f64,
    at: Option<Instant>,
    total: u64,
}

impl Rate {
    /// The default time constant: 5 s, smooth enough for rechoking every 10 s.
    pub const DEFAULT_TAU: Duration = Duration::from_secs(5);

    /// A rate of 0 that averages over the time constant `tau` (at least 1 ms).
    pub fn new(tau: Duration) -> Self {
        Rate {
            tau: tau.as_secs_f64().max(0.001),
            acc: 0.0,
            at: None,
            total: 0,
        }
    }

    /// Records `bytes` transferred at `now`. An earlier `now` than before counts as the same time.
    pub fn add(&mut self, bytes: u64, now: Instant) {
        self.acc = self.decayed(now) + bytes as f64;
        self.at = Some(self.at.map_or(now, |at| at.max(now)));
        self.total = self.total.saturating_add(bytes);
    }

    /// The rate in bytes per second as of `now`.
    pub fn get(&self, now: Instant) -> f64 {
        self.decayed(now) / self.tau
    }

    /// Total bytes ever recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn decayed(&self, now: Instant) -> f64 {
        match self.at {
            None => self.acc,
            Some(at) => {
                let dt = now.saturating_duration_since(at).as_secs_f64();
                self.acc * (-dt / self.tau).exp()
            }
        }
    }
}

impl Default for Rate {
    fn default() -> Self {
        Rate::new(Self::DEFAULT_TAU)
    }
}

/// How many block requests to keep in flight to one peer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RequestQueue {
    /// How much transfer time the queue should cover.
    pub target_latency: Duration,
    /// The least depth, so a new or slow peer still has requests to serve.
    pub min: usize,
    /// The greatest depth whatever the rate.
    pub max: usize,
}

impl RequestQueue {
    /// The `reqq` assumed for a peer that did not send one (as libtorrent does).
    pub const DEFAULT_REQQ: usize = 250;

    /// The queue depth for a peer sending `rate` bytes/s that accepts `reqq` outstanding
    /// requests (`None`: unknown, [`Self::DEFAULT_REQQ`]). Always at least 1.
    pub fn depth(&self, rate: f64, reqq: Option<u32>) -> usize {
        let wanted = rate.max(0.0) * self.target_latency.as_secs_f64() / f64::from(BLOCK_SIZE);
        // `as` saturates for floats, so a huge or NaN rate cannot overflow.
        let depth = (wanted.ceil() as usize).clamp(self.min, self.max.max(self.min));
        let reqq = reqq.map_or(Self::DEFAULT_REQQ, |q| q as usize);
        depth.min(reqq).max(1)
    }
}

impl Default for RequestQueue {
    /// 3 s of transfer, between 2 and 500 requests.
    fn default() -> Self {
        RequestQueue {
            target_latency: Duration::from_secs(3),
            min: 2,
            max: 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_stream_converges_and_decays() {
        let t0 = Instant::now();
        let mut rate = Rate::new(Duration::from_secs(2));
        for i in 1..=100u64 {
            rate.add(1000, t0 + Duration::from_millis(100 * i));
        }
        let end = t0 + Duration::from_secs(10);
        let r = rate.get(end);
        assert!((r - 10_000.0).abs() < 500.0, "rate {r}");
        assert_eq!(rate.total(), 100_000);
        let later = rate.get(end + Duration::from_secs(20));
        assert!(later < 10.0, "decayed rate {later}");
    }

    #[test]
    fn time_going_backwards_does_not_inflate() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut rate = Rate::default();
        rate.add(5000, t0);
        rate.add(5000, t0 - Duration::from_secs(5));
        assert!((rate.get(t0) - 10_000.0 / 5.0).abs() < 1e-6);
    }

    #[test]
    fn queue_depth_follows_rate_and_respects_reqq() {
        let q = RequestQueue::default();
        assert_eq!(q.depth(0.0, None), 2);
        // 1 MiB/s for 3 s = 192 blocks.
        assert_eq!(q.depth(1024.0 * 1024.0, None), 192);
        assert_eq!(q.depth(1024.0 * 1024.0, Some(100)), 100);
        assert_eq!(q.depth(1e12, None), 250);
        assert_eq!(q.depth(1e12, Some(10_000)), 500);
        assert_eq!(q.depth(f64::NAN, None), 2);
        assert_eq!(q.depth(1e6, Some(0)), 1);
    }
}
