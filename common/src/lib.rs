//! rill-common: the BitTorrent formats and protocols that Rill's client and tracker share.
//! Nothing here does I/O or depends on an async runtime; every decoder is bounded and
//! returns a typed error instead of panicking on hostile input.
//!
//! - [`bencode`]: bounded, tolerant decoding and canonical encoding (BEP 3).
//! - [`metainfo`]: `.torrent` files: parsing (v1, hybrid v1/v2 through its v1 part), path
//!   sanitising, and creating new torrents.
//! - [`info_hash`], [`peer_id`]: the 20-byte identifiers and their text forms.
//! - [`magnet`]: magnet links (BEP 9, BEP 53).
//! - [`compact`]: compact peer addresses (BEP 23, BEP 7).
//! - [`pieces`], [`bitfield`]: piece indexes, blocks, and the set of pieces a peer has.
//! - [`wire`]: the peer wire protocol: handshake, messages (BEP 3, 6, 10) and the codec,
//!   extension payloads (BEP 9 ut_metadata, BEP 11 ut_pex).
//! - [`tracker`]: tracker protocol types: HTTP announce and scrape (BEP 3, 23, 7, 48) and UDP
//!   packets (BEP 15, 41).
//! - [`krpc`]: DHT messages (BEP 5).

pub mod bencode;
pub mod bitfield;
pub mod compact;
pub mod info_hash;
pub mod krpc;
pub mod magnet;
pub mod metainfo;
pub mod peer_id;
pub mod pieces;
pub mod tracker;
pub mod wire;

pub use info_hash::InfoHash;
pub use peer_id::PeerId;
