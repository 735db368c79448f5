//! `announce_peer` tokens (BEP 5): a node hands a token to each `get_peers` querier and only
//! accepts an `announce_peer` carrying a token it gave to that same IP address recently.
//!
//! Invariants: a token is `SHA-1(secret || ip)` cut to [`TOKEN_LEN`] bytes, so it is bound to
//! the querier's IP; the secret rotates every [`ROTATE_EVERY`] and the previous secret is still
//! accepted, so a token lives between 5 and 10 minutes. Pure: time and randomness come in.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use sha1::{Digest, Sha1};

/// How often the secret changes (BEP 5: "every five minutes").
pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);
/// Bytes of a token on the wire.
pub const TOKEN_LEN: usize = 8;

/// The current and previous secrets.
#[derive(Clone, Debug)]
pub struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated_at: Instant,
}

impl Tokens {
    /// Two fresh random secrets; the next rotation is due `ROTATE_EVERY` after `now`.
    pub fn new(now: Instant, rng: &mut impl Rng) -> Self {
        let mut current = [0u8; 16];
        let mut previous = [0u8; 16];
        rng.fill(&mut current);
        rng.fill(&mut previous);
        Tokens {
            current,
            previous,
            rotated_at: now,
        }
    }

    /// Rotates the secret if it is due; returns whether it did.
    pub fn rotate_if_due(&mut self, now: Instant, rng: &mut impl Rng) -> bool {
        if now.saturating_duration_since(self.rotated_at) < ROTATE_EVERY {
            return false;
        }
        self.previous = self.current;
        rng.fill(&mut self.current);
        self.rotated_at = now;
        true
    }

    /// The token to give a querier at `ip`.
    pub fn issue(&self, ip: IpAddr) -> Vec<u8> {
        token(&self.current, ip)
    }

    /// Whether `token` was issued to `ip` under the current or the previous secret.
    pub fn verify(&self, given: &[u8], ip: IpAddr) -> bool {
        given == token(&self.current, ip).as_slice()
            || given == token(&self.previous, ip).as_slice()
    }
}

fn token(secret: &[u8; 16], ip: IpAddr) -> Vec<u8> {
    let mut hash = Sha1::new();
    hash.update(secret);
    match ip {
        IpAddr::V4(v4) => hash.update(v4.octets()),
        IpAddr::V6(v6) => hash.update(v6.octets()),
    }
    let digest = hash.finalize();
    digest.iter().take(TOKEN_LEN).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn token_is_bound_to_the_ip() {
        let mut rng = StdRng::seed_from_u64(1);
        let tokens = Tokens::new(Instant::now(), &mut rng);
        let t = tokens.issue(ip("10.0.0.1"));
        assert_eq!(t.len(), TOKEN_LEN);
        assert!(tokens.verify(&t, ip("10.0.0.1")));
        assert!(!tokens.verify(&t, ip("10.0.0.2")));
        assert!(!tokens.verify(&t, ip("::1")));
        assert!(!tokens.verify(b"", ip("10.0.0.1")));
    }

    #[test]
    fn previous_secret_accepted_then_expires() {
        let mut rng = StdRng::seed_from_u64(2);
        let start = Instant::now();
        let mut tokens = Tokens::new(start, &mut rng);
        let a = ip("192.168.1.9");
        let t = tokens.issue(a);
        assert!(!tokens.rotate_if_due(start + Duration::from_secs(299), &mut rng));
        assert!(tokens.rotate_if_due(start + ROTATE_EVERY, &mut rng));
        assert!(tokens.verify(&t, a), "previous secret still accepted");
        assert_ne!(tokens.issue(a), t, "new secret, new token");
        assert!(tokens.rotate_if_due(start + 2 * ROTATE_EVERY, &mut rng));
        assert!(
            !tokens.verify(&t, a),
            "two rotations later the token is dead"
        );
    }
}
