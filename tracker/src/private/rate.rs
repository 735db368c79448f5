//! The per-user announce rate limit: a token bucket in exact integer arithmetic.
//!
//! A bucket holds up to `burst` tokens and refills `per_minute` tokens a minute; an admitted
//! announce takes one. Tokens are counted in sixtieths, so a second of time adds exactly
//! `per_minute` sixtieths: no rounding, no drift. A new bucket starts full. Time is whole
//! unix seconds passed in; a clock that goes backwards refills nothing (and never panics).

/// The announce rate limit of every user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Announces a user may make at once after a quiet spell.
    pub burst: u32,
    /// Sustained announces per minute.
    pub per_minute: u32,
}

impl Default for RateLimit {
    /// 240 at once, 120 a minute: a seedbox with 3,000 torrents on a 30-minute interval
    /// averages 100 a minute, well inside; a runaway client looping on a refusal is stopped.
    fn default() -> Self {
        RateLimit {
            burst: 240,
            per_minute: 120,
        }
    }
}

/// Sixtieths of a token per token.
const UNIT: u64 = 60;

/// One user's bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// Tokens, in sixtieths.
    level: u64,
    /// The unix second of the last refill.
    last: u64,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn full(limit: RateLimit, now: u64) -> Self {
        Bucket {
            level: u64::from(limit.burst) * UNIT,
            last: now,
        }
    }

    /// Refills for the time since the last call, then takes a token if there is one.
    pub(crate) fn take(&mut self, limit: RateLimit, now: u64) -> bool {
        let capacity = u64::from(limit.burst) * UNIT;
        let elapsed = now.saturating_sub(self.last);
        let refill = elapsed.saturating_mul(u64::from(limit.per_minute));
        self.level = self.level.saturating_add(refill).min(capacity);
        self.last = self.last.max(now);
        if self.level >= UNIT {
            self.level -= UNIT;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_at_the_rate() {
        let limit = RateLimit {
            burst: 3,
            per_minute: 2,
        };
        let mut bucket = Bucket::full(limit, 1000);
        assert!(bucket.take(limit, 1000));
        assert!(bucket.take(limit, 1000));
        assert!(bucket.take(limit, 1000));
        assert!(!bucket.take(limit, 1000), "burst spent");
        assert!(!bucket.take(limit, 1029), "half a token after 29 s");
        assert!(bucket.take(limit, 1030), "one token after 30 s at 2/min");
        assert!(!bucket.take(limit, 1030));
        // A long quiet spell refills to the burst, not beyond.
        let taken = (0..10).filter(|_| bucket.take(limit, 100_000)).count();
        assert_eq!(taken, 3);
    }

    #[test]
    fn clock_going_backwards_refills_nothing() {
        let limit = RateLimit {
            burst: 1,
            per_minute: 60,
        };
        let mut bucket = Bucket::full(limit, 1000);
        assert!(bucket.take(limit, 1000));
        assert!(!bucket.take(limit, 10), "earlier time");
        assert!(!bucket.take(limit, 1000), "no refill from the step back");
        assert!(bucket.take(limit, 1001));
    }

    #[test]
    fn zero_burst_refuses_everything() {
        let limit = RateLimit {
            burst: 0,
            per_minute: 1000,
        };
        let mut bucket = Bucket::full(limit, 0);
        assert!(!bucket.take(limit, 0));
        assert!(!bucket.take(limit, 1_000_000));
    }
}
