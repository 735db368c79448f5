//! The mainline DHT (BEP 5), with read-only nodes (BEP 43) and IPv6 (BEP 32): find peers of a
//! torrent without a tracker, and announce ourselves.
//!
//! Pure cores (no tokio, no clock, no I/O; time and randomness come in):
//! - [`family`]: the IPv4 and IPv6 DHTs (BEP 32), `want` and `nodes6` rules;
//! - [`routing_table`]: k-buckets split around our own id, node status, replacement cache;
//! - [`lookup`]: the iterative `find_node` / `get_peers` lookup (α = 3, closest K);
//! - [`tokens`]: `announce_peer` tokens bound to the querier's IP, rotating secret;
//! - [`peer_store`]: announced peers with expiry and caps;
//! - [`rate_limit`]: per-address allowance for incoming packets;
//! - [`node`]: the whole node: queries answered, transactions matched, lookups driven.
//!
//! The one shell is [`task`]: a UDP socket per address family, timers and the saved routing
//! tables, behind the [`Dht`] handle.

pub mod family;
pub mod lookup;
pub mod node;
pub mod peer_store;
pub mod rate_limit;
pub mod routing_table;
pub mod task;
pub mod tokens;

pub use node::{Node, NodeConfig, QueryFailure};
pub use task::{DEFAULT_BOOTSTRAP, Dht, DhtConfig, DhtError, DhtStats, LookupOutcome};
