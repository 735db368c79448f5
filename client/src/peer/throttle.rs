//! A token bucket shared by every connection of a process, for `--max-down` and `--max-up`.
//!
//! Invariants: tokens refill at `rate` bytes per second up to `burst`; [`Throttle::consume`]
//! always takes what it is asked for (the balance may go below zero, so a block larger than the
//! burst still passes) and then sleeps until the balance is back to zero, so over any long
//! window no more than `rate * window + burst` bytes pass. An unlimited throttle never sleeps
//! and takes no lock.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A shared byte-rate limit (a token bucket); `Throttle::unlimited()` lets everything through.
#[derive(Debug)]
pub struct Throttle {
    limit: Option<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    /// No limit.
    pub fn unlimited() -> Self {
        Throttle { limit: None }
    }

    /// At most `bytes_per_second` on average (`None` or 0: no limit), with bursts of a quarter
    /// second's worth (at least 16 KiB, one block).
    pub fn new(bytes_per_second: Option<u64>) -> Self {
        let Some(rate) = bytes_per_second.filter(|&rate| rate > 0) else {
            return Self::unlimited();
        };
        let rate = rate as f64;
        let burst = (rate / 4.0).max(16_384.0);
        Throttle {
            limit: Some(Bucket {
                rate,
                burst,
                state: Mutex::new((burst, Instant::now())),
            }),
        }
    }

    /// Whether this throttle limits anything.
    pub fn is_limited(&self) -> bool {
        self.limit.is_some()
    }

    /// Takes `bytes` tokens and returns how long the caller must wait before going on.
    pub fn debit(&self, bytes: usize, now: Instant) -> Duration {
        let Some(bucket) = &self.limit else {
            return Duration::ZERO;
        };
        let Ok(mut state) = bucket.state.lock() else {
            return Duration::ZERO;
        };
        let (tokens, last) = *state;
        let refilled = now.saturating_duration_since(last).as_secs_f64() * bucket.rate;
        let balance = (tokens + refilled).min(bucket.burst) - bytes as f64;
        *state = (balance, now.max(last));
        if balance >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-balance / bucket.rate)
        }
    }

    /// Takes `bytes` tokens, sleeping as long as the limit requires.
    pub async fn consume(&self, bytes: usize) {
        if self.limit.is_none() {
            return;
        }
        let wait = self.debit(bytes, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits() {
        let throttle = Throttle::new(None);
        assert!(!throttle.is_limited());
        assert_eq!(throttle.debit(1 << 30, Instant::now()), Duration::ZERO);
        assert!(!Throttle::new(Some(0)).is_limited());
    }

    #[test]
    fn burst_passes_then_the_rate_holds() {
        let throttle = Throttle::new(Some(64 * 1024));
        let start = Instant::now();
        // The burst is 16 KiB (a quarter second of 64 KiB/s).
        assert_eq!(throttle.debit(16_384, start), Duration::ZERO);
        // The next 16 KiB must wait a quarter second.
        let wait = throttle.debit(16_384, start);
        assert!((wait.as_secs_f64() - 0.25).abs() < 1e-6, "{wait:?}");
        // A second later, 64 KiB refilled, minus the 16 KiB owed: capped at the burst.
        let later = start + Duration::from_secs(1);
        assert_eq!(throttle.debit(16_384, later), Duration::ZERO);
        let wait = throttle.debit(32_768, later);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
    }

    #[test]
    fn long_run_average_is_the_rate() {
        let rate = 100_000u64;
        let throttle = Throttle::new(Some(rate));
        let mut now = Instant::now();
        let start = now;
        let mut sent = 0u64;
        for _ in 0..1000 {
            let wait = throttle.debit(16_384, now);
            now += wait;
            sent += 16_384;
        }
        let elapsed = now.duration_since(start).as_secs_f64();
        let burst = 25_000.0;
        assert!(sent as f64 <= rate as f64 * elapsed + burst + 16_384.0);
        assert!(sent as f64 >= rate as f64 * elapsed - 16_384.0);
    }
}
