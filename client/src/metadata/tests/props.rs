//! Property tests: random swarms of honest, lying, rejecting and silent peers, and
//! hostile messages.

use proptest::prelude::*;

use super::*;

/// How a peer in the property test behaves.
#[derive(Clone, Debug)]
enum Behaviour {
    Honest,
    /// Sends garbage for these pieces (bit mask).
    Liar(u8),
    Rejecter,
    Silent,
    /// Announces a wrong size and sends garbage of that size.
    WrongSize,
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        Just(Behaviour::Honest),
        (1u8..=255).prop_map(Behaviour::Liar),
        Just(Behaviour::Rejecter),
        Just(Behaviour::Silent),
        Just(Behaviour::WrongSize),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn never_outputs_a_dict_that_fails_the_hash(
        len in 1usize..5 * 16384,
        peers in prop::collection::vec(behaviour(), 1..6),
        order in prop::collection::vec(any::<prop::sample::Index>(), 400),
    ) {
        let mut h = H::new(len);
        let size = len as u32;
        // Pending answers: (peer, message).
        let mut pending: Vec<(u32, Message)> = Vec::new();
        let mut outs: Vec<Action> = Vec::new();
        for (i, b) in peers.iter().enumerate() {
            let key = i as u32 + 1;
            h.connect(key, true);
            let announced = match b { Behaviour::WrongSize => size + 100, _ => size };
            outs.extend(h.handle(Event::Received(PeerKey(key), ext_handshake(Some(announced)))));
        }
        let mut result = None;
        for pick in order {
            for a in outs.drain(..) {
                if let Action::Done(bytes) = &a {
                    prop_assert_eq!(InfoHash::of_info(bytes), InfoHash::of_info(&h.dict));
                    result = Some(bytes.clone());
                }
                let Action::Send(PeerKey(key), Message::Extended { id: THEIR_ID, payload }) = a else {
                    continue;
                };
                let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(&payload) else {
                    continue;
                };
                let b = &peers[key as usize - 1];
                let total = match b { Behaviour::WrongSize => size + 100, _ => size };
                let Some(plen) = metadata_piece_len(total, piece) else { continue };
                let reply = match b {
                    Behaviour::Silent => continue,
                    Behaviour::Rejecter => MetadataMessage::Reject { piece },
                    Behaviour::Liar(mask) if mask & (1 << (piece % 8)) != 0 => MetadataMessage::Data {
                        piece, total_size: total, data: Bytes::from(vec![0xAA; plen as usize]),
                    },
                    Behaviour::WrongSize => MetadataMessage::Data {
                        piece, total_size: total, data: Bytes::from(vec![1; plen as usize]),
                    },
                    _ => MetadataMessage::Data { piece, total_size: total, data: h.piece(piece) },
                };
                pending.push((key, Message::Extended { id: OUR_UT_METADATA, payload: reply.to_bytes() }));
            }
            if result.is_some() {
                break;
            }
            if pending.is_empty() {
                outs.extend(h.advance(Duration::from_secs(5)));
            } else {
                let (key, message) = pending.remove(pick.index(pending.len()));
                outs.extend(h.handle(Event::Received(PeerKey(key), message)));
            }
        }
        if let Some(bytes) = result {
            prop_assert_eq!(bytes, h.dict.clone());
        }
        // With one honest peer, whatever the others do, the dict comes out.
        if peers.iter().any(|b| matches!(b, Behaviour::Honest)) {
            prop_assert!(h.fetch.is_finished(), "honest peer present but no dict");
        }
    }
}

fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (0u8..4, prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(id, p)| {
            Message::Extended {
                id: if id == 3 { OUR_UT_METADATA } else { id },
                payload: Bytes::from(p),
            }
        }),
        (any::<u32>(), any::<u32>(), 0usize..20000).prop_map(|(piece, total_size, len)| {
            Message::Extended {
                id: OUR_UT_METADATA,
                payload: MetadataMessage::Data {
                    piece: piece % 8,
                    total_size: total_size % (8 * 16384),
                    data: Bytes::from(vec![0; len]),
                }
                .to_bytes(),
            }
        }),
        (0u32..8).prop_map(|piece| Message::Extended {
            id: OUR_UT_METADATA,
            payload: MetadataMessage::Reject { piece }.to_bytes(),
        }),
        (any::<Option<u32>>()).prop_map(|size| ext_handshake(size.map(|s| s % (1 << 24)))),
        Just(Message::HaveAll),
        Just(Message::Unchoke),
    ]
}

proptest! {
    #[test]
    fn hostile_messages_never_panic_nor_finish_with_a_wrong_dict(
        ops in prop::collection::vec((1u32..5, any_message(), 0u64..40), 1..200),
    ) {
        let mut h = H::new(3 * 16384 + 5);
        for key in 1..5 {
            h.connect(key, true);
        }
        for (key, message, wait) in ops {
            let mut out = h.handle(Event::Received(PeerKey(key), message));
            if wait > 30 {
                out.extend(h.advance(Duration::from_secs(wait)));
                out.extend(h.handle(Event::Disconnected(PeerKey(key))));
                out.extend(h.connect(key, true));
            }
            for a in &out {
                if let Action::Done(bytes) = a {
                    prop_assert_eq!(bytes, &h.dict);
                }
            }
        }
    }
}
