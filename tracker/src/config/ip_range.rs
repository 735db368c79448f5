//! [`IpRange`]: an address range in CIDR notation, for `[http] trusted_proxies`.
//! Invariant: the stored network address has its host bits cleared, and IPv4-mapped IPv6
//! ranges are stored as IPv4, so that `contains` compares like with like.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// An IP address range in CIDR notation (`10.0.0.0/8`, `::1/128`); a bare address is a
/// single-address range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    /// The network address (host bits cleared).
    network: IpAddr,
    /// The prefix length.
    prefix: u8,
}

/// Why an [`IpRange`] does not parse.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{0:?} is not an address range like 10.0.0.0/8 or fd00::/8")]
pub struct IpRangeError(String);

impl IpRange {
    /// The range of `addr/prefix`; `None` when the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let network = match addr {
            IpAddr::V4(v4) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            _ => return None,
        };
        Some(IpRange { network, prefix })
    }

    /// Whether `addr` is in the range; IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = IpRangeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || IpRangeError(text.to_owned());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| err())?;
                (addr, prefix.parse::<u8>().map_err(|_| err())?)
            }
            None => {
                let addr: IpAddr = text.parse().map_err(|_| err())?;
                (addr, if addr.is_ipv4() { 32 } else { 128 })
            }
        };
        // A mapped IPv4 range is the IPv4 range, so that `contains` compares like with like.
        match (addr, addr.to_canonical()) {
            (IpAddr::V6(_), IpAddr::V4(v4)) if prefix >= 96 => {
                IpRange::new(IpAddr::V4(v4), prefix - 96)
            }
            _ => IpRange::new(addr, prefix),
        }
        .ok_or_else(err)
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for IpRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges() {
        let range: IpRange = "10.1.2.3/8".parse().unwrap();
        assert_eq!(range.to_string(), "10.0.0.0/8");
        assert!(range.contains("10.200.0.1".parse().unwrap()));
        assert!(range.contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(!range.contains("11.0.0.1".parse().unwrap()));
        assert!(!range.contains("::1".parse().unwrap()));

        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        let one: IpRange = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        let mapped: IpRange = "::ffff:192.168.0.0/112".parse().unwrap();
        assert_eq!(mapped.to_string(), "192.168.0.0/16");
        assert!(mapped.contains("192.168.5.5".parse().unwrap()));

        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "example.com/8",
            "1.2.3.4/-1",
        ] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }
}
