//! HTTP tracker announce and scrape: query strings and bencoded replies.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};

/// Everything but RFC 3986 unreserved characters is escaped.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes every byte except RFC 3986 unreserved characters, as trackers expect for
/// binary `info_hash` and `peer_id`.
pub fn percent_encode_bytes(bytes: &[u8]) -> String {
    percent_encode(bytes, ESCAPED).to_string()
}
