//! `krpc::Message::from_bytes` (BEP 5 DHT messages) on arbitrary bytes.
//!
//! Checks, for every input that decodes: the documented caps hold (transaction id length,
//! `nodes`, `nodes6`, `values` counts, node families), and the canonical encoding decodes
//! to an equal message and re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_common::krpc::{Body, KrpcError, MAX_NODES, MAX_TRANSACTION_ID_LEN, MAX_VALUES, Message};

fuzz_target!(|data: &[u8]| {
    let message = match Message::from_bytes(data) {
        Ok(message) => message,
        Err(KrpcError::InvalidQuery { transaction_id, .. }) => {
            assert!(transaction_id.len() <= MAX_TRANSACTION_ID_LEN);
            return;
        }
        Err(_) => return,
    };
    assert!(message.transaction_id.len() <= MAX_TRANSACTION_ID_LEN);
    if let Body::Response(response) = &message.body {
        assert!(response.nodes.len() <= MAX_NODES);
        assert!(response.nodes6.len() <= MAX_NODES);
        assert!(response.values.len() <= MAX_VALUES);
        assert!(response.nodes.iter().all(|n| n.addr.is_ipv4()));
        assert!(response.nodes6.iter().all(|n| n.addr.is_ipv6()));
    }
    let bytes = message.to_bytes();
    let again = Message::from_bytes(&bytes);
    assert_eq!(again.as_ref(), Ok(&message), "re-encoded as {bytes:?}");
    assert_eq!(message.to_bytes(), bytes);
});
