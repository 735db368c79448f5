//! Passkeys: the secret in a private announce URL (`/announce/<passkey>`).
//!
//! Invariants: a [`Passkey`] is exactly [`Passkey::LEN`] ASCII letters and digits
//! (`[A-Za-z0-9]`), so it is safe in a URL path, a log line or an SQL parameter, and a
//! passkey holding SQL metacharacters, `/`, `..`, `%` or non-ASCII is refused by
//! [`Passkey::parse`] before anything looks it up. Generated passkeys come from a CSPRNG
//! (the bound is `CryptoRng`): 62^32, about 190 bits.
//!
//! Comparison: `==` on passkeys is constant-time (it folds the XOR of all 32 bytes), so an
//! attacker timing a direct comparison (the admin API, a future "reset if equal") learns
//! nothing about a matching prefix. The tracker's lookup goes through a `HashMap` whose
//! SipHash key is random per process: the timing of a lookup depends on the hash of the
//! attempt, which says nothing an attacker can use about stored passkeys, and the final
//! equality check within a bucket is this constant-time `==`. `Debug` never prints the key.

#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::fmt;
use std::hash::{Hash, Hasher};

use rand::distr::{Alphanumeric, Distribution};
use rand::{CryptoRng, Rng};
use thiserror::Error;

/// A validated passkey: 32 ASCII alphanumeric characters.
#[derive(Clone, Copy, Eq)]
pub struct Passkey([u8; Passkey::LEN]);

/// Why a string is not a passkey (the message never echoes the input).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum PasskeyError {
    /// Not [`Passkey::LEN`] bytes long.
    #[error("a passkey is 32 characters, not {0}")]
    Length(usize),
    /// A byte outside `[A-Za-z0-9]`.
    #[error("a passkey holds only letters and digits")]
    Alphabet,
}

impl Passkey {
    /// The length of every passkey, in characters (and bytes).
    pub const LEN: usize = 32;

    /// A fresh random passkey from a cryptographically secure generator.
    pub fn generate<R: Rng + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut key = [0u8; Self::LEN];
        for (byte, drawn) in key.iter_mut().zip(Alphanumeric.sample_iter(rng)) {
            *byte = drawn;
        }
        Passkey(key)
    }

    /// Validates `text`: exactly 32 ASCII letters and digits, nothing else.
    pub fn parse(text: &str) -> Result<Self, PasskeyError> {
        let bytes = text.as_bytes();
        let key =
            <[u8; Self::LEN]>::try_from(bytes).map_err(|_| PasskeyError::Length(bytes.len()))?;
        if !key.iter().all(u8::is_ascii_alphanumeric) {
            return Err(PasskeyError::Alphabet);
        }
        Ok(Passkey(key))
    }

    /// The passkey as text (for an announce URL or the database).
    pub fn as_str(&self) -> &str {
        // Always ASCII by construction; the fallback is unreachable.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl PartialEq for Passkey {
    /// Constant-time: every byte is compared whatever the first difference.
    fn eq(&self, other: &Self) -> bool {
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl Hash for Passkey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Consistent with `eq`: equal passkeys have equal bytes.
        self.0.hash(state);
    }
}

impl fmt::Debug for Passkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A passkey is a secret: keep it out of logs and panic messages.
        f.write_str("Passkey(..)")
    }
}

impl std::str::FromStr for Passkey {
    type Err = PasskeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Passkey::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn generated_passkeys_are_valid_and_distinct() {
        let mut rng = StdRng::seed_from_u64(7);
        let a = Passkey::generate(&mut rng);
        let b = Passkey::generate(&mut rng);
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), Passkey::LEN);
        assert_eq!(Passkey::parse(a.as_str()), Ok(a));
        // The thread generator is a CSPRNG too.
        let c = Passkey::generate(&mut rand::rng());
        assert!(c.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn parse_refuses_wrong_length() {
        assert_eq!(Passkey::parse(""), Err(PasskeyError::Length(0)));
        assert_eq!(
            Passkey::parse(&"a".repeat(31)),
            Err(PasskeyError::Length(31))
        );
        assert_eq!(
            Passkey::parse(&"a".repeat(33)),
            Err(PasskeyError::Length(33))
        );
        assert!(Passkey::parse(&"aZ09".repeat(8)).is_ok());
    }

    #[test]
    fn parse_refuses_metacharacters_and_path_tricks() {
        for bad in [
            "'; DROP TABLE users; --aaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\"",
            "../../../../etc/passwdaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa%2F",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\0",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_-",
        ] {
            assert_eq!(bad.len(), 32, "{bad:?}");
            assert_eq!(Passkey::parse(bad), Err(PasskeyError::Alphabet), "{bad:?}");
        }
        // 16 two-byte characters: 32 bytes, not ASCII.
        assert_eq!(Passkey::parse(&"é".repeat(16)), Err(PasskeyError::Alphabet));
    }

    #[test]
    fn debug_hides_the_key_and_errors_do_not_echo_it() {
        let key = Passkey::parse(&"S".repeat(32)).unwrap();
        assert!(!format!("{key:?}").contains("SSSS"));
        let err = Passkey::parse("'; DROP TABLE users; --").unwrap_err();
        assert!(!err.to_string().contains("DROP"));
    }

    #[test]
    fn equality_is_bytewise() {
        let a = Passkey::parse(&"a".repeat(32)).unwrap();
        let mut last = "a".repeat(31);
        last.push('b');
        let b = Passkey::parse(&last).unwrap();
        assert_ne!(a, b);
        assert_eq!(a, Passkey::parse(&"a".repeat(32)).unwrap());
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_the_alphabet(text in "\\PC{0,40}") {
            let valid = text.len() == 32 && text.bytes().all(|b| b.is_ascii_alphanumeric());
            prop_assert_eq!(Passkey::parse(&text).is_ok(), valid);
        }

        #[test]
        fn parse_round_trips(text in "[A-Za-z0-9]{32}") {
            let key = Passkey::parse(&text).unwrap();
            prop_assert_eq!(key.as_str(), text.as_str());
        }
    }
}
