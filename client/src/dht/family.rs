//! The DHT's two address families (BEP 32): the IPv4 DHT and the IPv6 DHT are independent
//! networks, each with its own routing table, lookups and stored peers; a node on both keeps
//! one of each and the same node id in both.
//!
//! Invariants: an address's family is the family of its canonical form, so an IPv4-mapped
//! IPv6 address (`::ffff:a.b.c.d`) counts as IPv4 and never enters the IPv6 DHT; a reply
//! carries the node lists its querier's `want` asks for, or, without `want`, the list of the
//! family the query came in on; a node on both families asks for both (`want` = `n4`, `n6`),
//! so either DHT's replies bootstrap the other, and a single-family node sends no `want`.
//! Pure: no I/O.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::SocketAddr;

use rill_common::krpc::{CompactNode, Want};

/// An address family, naming one of the two DHTs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// The IPv4 DHT (BEP 5): `nodes`, 6-byte peers.
    V4,
    /// The IPv6 DHT (BEP 32): `nodes6`, 18-byte peers.
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The family of `addr` (an IPv4-mapped IPv6 address is IPv4).
    pub fn of(addr: &SocketAddr) -> Family {
        if addr.ip().to_canonical().is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// The other family.
    pub fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }

    /// The `want` flag naming this family alone.
    pub fn want(self) -> Want {
        Want {
            v4: self == Family::V4,
            v6: self == Family::V6,
        }
    }
}

/// Which families a node takes part in (one socket each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Families {
    /// On the IPv4 DHT.
    pub v4: bool,
    /// On the IPv6 DHT.
    pub v6: bool,
}

impl Default for Families {
    /// IPv4 only, as BEP 5 alone.
    fn default() -> Self {
        Families {
            v4: true,
            v6: false,
        }
    }
}

impl Families {
    /// Whether the node is on `family`'s DHT.
    pub fn has(self, family: Family) -> bool {
        match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }

    /// The families the node is on, IPv4 first.
    pub fn iter(self) -> impl Iterator<Item = Family> {
        Family::ALL.into_iter().filter(move |f| self.has(*f))
    }

    /// The `want` our `find_node` and `get_peers` queries carry: both families for a node on
    /// both (so a reply from either DHT also feeds the other), else none (the default).
    pub fn query_want(self) -> Want {
        if self.v4 && self.v6 {
            Want { v4: true, v6: true }
        } else {
            Want::default()
        }
    }
}

/// The node lists a reply to a query that came in on `asked_on` carries: those `want` names,
/// or without `want` the family of the query (BEP 32).
pub fn reply_want(want: Want, asked_on: Family) -> Want {
    if want.is_unspecified() {
        asked_on.want()
    } else {
        want
    }
}

/// `addr` with its canonical IP: an IPv4-mapped IPv6 address (as a dual-stack TCP listener
/// reports IPv4 peers) becomes plain IPv4, so it is sent from and matched on the IPv4 socket.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Nodes of `family` among `nodes` that can be contacted (port not 0), in order, each with
/// its canonical address (an IPv4-mapped one as plain IPv4).
pub fn reachable(nodes: &[CompactNode], family: Family) -> Vec<CompactNode> {
    nodes
        .iter()
        .filter(|n| n.addr.port() != 0 && Family::of(&n.addr) == family)
        .map(|n| CompactNode {
            id: n.id,
            addr: canonical(n.addr),
        })
        .collect()
}

/// A value per family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerFamily<T> {
    /// The IPv4 DHT's.
    pub v4: T,
    /// The IPv6 DHT's.
    pub v6: T,
}

impl<T> PerFamily<T> {
    /// `family`'s value.
    pub fn get(&self, family: Family) -> &T {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// `family`'s value, to change.
    pub fn get_mut(&mut self, family: Family) -> &mut T {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    /// Both values, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.v4, &self.v6].into_iter()
    }

    /// Both values to change, IPv4 first.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        [&mut self.v4, &mut self.v6].into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rill_common::krpc::NodeId;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    fn v6(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv6Addr::LOCALHOST, port))
    }

    #[test]
    fn family_of_an_address_is_its_canonical_family() {
        assert_eq!(Family::of(&v4(1)), Family::V4);
        assert_eq!(Family::of(&v6(1)), Family::V6);
        let mapped = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped(), 1));
        assert_eq!(Family::of(&mapped), Family::V4, "IPv4-mapped is IPv4");
        assert_eq!(Family::V4.other(), Family::V6);
        assert_eq!(Family::V6.other(), Family::V4);
    }

    #[test]
    fn reply_follows_want_else_the_family_asked_on() {
        let none = Want::default();
        let n4 = Want {
            v4: true,
            v6: false,
        };
        let n6 = Want {
            v4: false,
            v6: true,
        };
        let both = Want { v4: true, v6: true };
        assert_eq!(reply_want(none, Family::V4), n4);
        assert_eq!(reply_want(none, Family::V6), n6);
        assert_eq!(reply_want(n6, Family::V4), n6, "n6 asked over IPv4");
        assert_eq!(reply_want(n4, Family::V6), n4, "n4 asked over IPv6");
        assert_eq!(reply_want(both, Family::V4), both);
    }

    #[test]
    fn only_a_node_on_both_families_sends_want() {
        assert_eq!(Families::default().query_want(), Want::default());
        let v6_only = Families {
            v4: false,
            v6: true,
        };
        assert_eq!(v6_only.query_want(), Want::default());
        assert_eq!(v6_only.iter().collect::<Vec<_>>(), vec![Family::V6]);
        let both = Families { v4: true, v6: true };
        assert_eq!(both.query_want(), Want { v4: true, v6: true });
        assert_eq!(both.iter().collect::<Vec<_>>(), Family::ALL.to_vec());
    }

    #[test]
    fn reachable_keeps_the_family_and_drops_port_zero() {
        let id = NodeId::from_bytes([1; 20]);
        let mapped = SocketAddr::from((Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 5));
        let nodes: Vec<CompactNode> = [v4(1), v6(2), v6(0), mapped, v4(0)]
            .into_iter()
            .map(|addr| CompactNode { id, addr })
            .collect();
        let addrs =
            |f| -> Vec<SocketAddr> { reachable(&nodes, f).into_iter().map(|n| n.addr).collect() };
        assert_eq!(addrs(Family::V4), vec![v4(1), v4(5)], "mapped made plain");
        assert_eq!(addrs(Family::V6), vec![v6(2)]);
    }

    #[test]
    fn per_family_picks_its_side() {
        let mut both = PerFamily { v4: 1, v6: 2 };
        *both.get_mut(Family::V6) += 10;
        assert_eq!(*both.get(Family::V4), 1);
        assert_eq!(*both.get(Family::V6), 12);
        assert_eq!(both.iter().copied().collect::<Vec<_>>(), vec![1, 12]);
    }
}
