//! Where a torrent's data lives on disk.
//!
//! - [`layout`]: pure mapping of pieces and blocks to file spans (BEP 3, BEP 47 pad files).

pub mod layout;
