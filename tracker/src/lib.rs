//! rill-tracker: Rill's HTTP and UDP BitTorrent tracker. The server is not built yet; the
//! protocol types it will use live in `rill_common::tracker`.
