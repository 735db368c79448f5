//! The UDP tracker decoders (BEP 15, BEP 41) on arbitrary bytes.
//!
//! Checks, for every input that decodes:
//! - `Request`: `decode(encode(r)) == r`, and `request_transaction_id` finds its id;
//! - `Response`, for both address families: `decode(encode(r)) == r`, except that an
//!   announce reply keeps at most `max_peers(family)` peers when encoded;
//! - `decode_url_data`: re-encoding the URL data with `encode_url_data` decodes to the same
//!   bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_common::tracker::udp::{
    Family, Request, Response, decode_url_data, encode_url_data, max_peers, request_transaction_id,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::decode(data) {
        assert!(request_transaction_id(data).is_some());
        let again = Request::decode(&request.encode());
        assert_eq!(again.as_ref(), Ok(&request));
    }
    for family in [Family::V4, Family::V6] {
        let Ok(response) = Response::decode(data, family) else {
            continue;
        };
        let mut expected = response.clone();
        if let Response::Announce { peers, .. } = &mut expected {
            assert!(peers.iter().all(|peer| Family::of(peer) == family));
            peers.truncate(max_peers(family));
        }
        let again = Response::decode(&response.encode(family), family);
        assert_eq!(again, Ok(expected));
    }
    if let Ok(url_data) = decode_url_data(data) {
        assert!(url_data.len() <= data.len());
        let mut options = Vec::new();
        encode_url_data(&url_data, &mut options);
        assert_eq!(decode_url_data(&options).as_ref(), Ok(&url_data));
    }
});
