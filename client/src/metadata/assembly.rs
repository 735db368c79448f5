//! Assembling the dict: which size, which pieces of which peer, the hash check and blame.

use std::collections::BTreeMap;

use bytes::BytesMut;
use rill_common::wire::extension::metadata_piece_count;
use sha1::{Digest, Sha1};

use super::*;

impl MetadataFetch {
    /// Stores a requested piece; checks the dict when it is whole.
    pub(super) fn piece_arrived(
        &mut self,
        piece: u32,
        size: u32,
        data: Bytes,
        sender: Sender,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(attempt) = self.attempt.as_mut().filter(|a| a.size == size) else {
            return;
        };
        let Some(slot) = attempt.pieces.get_mut(piece as usize) else {
            return;
        };
        if slot.is_none() {
            *slot = Some((data, sender));
        }
        if attempt.pieces.iter().all(|p| p.is_some()) {
            let Some(attempt) = self.attempt.take() else {
                return;
            };
            self.check(attempt, now, out);
        }
    }

    /// A whole dict: done if its SHA-1 is the info hash, else blame and start over.
    pub(super) fn check(&mut self, attempt: Attempt, now: Instant, out: &mut Vec<Action>) {
        let mut dict = BytesMut::with_capacity(attempt.size as usize);
        let mut senders: Vec<Sender> = Vec::new();
        for (data, sender) in attempt.pieces.iter().flatten() {
            dict.extend_from_slice(data);
            if !senders.contains(sender) {
                senders.push(*sender);
            }
        }
        let dict = dict.freeze();
        if InfoHash::of_info(&dict) == self.config.info_hash {
            // Anyone whose piece of an earlier attempt differs from the verified dict lied.
            let liars: Vec<Sender> = self
                .suspects
                .iter()
                .filter(|(index, size, digest, _)| {
                    *size != attempt.size || piece_digest(&dict, *index) != Some(*digest)
                })
                .map(|(_, _, _, s)| *s)
                .collect();
            for liar in liars {
                self.ban(liar, now, out);
            }
            self.finished = true;
            out.push(Action::Done(dict));
            return;
        }
        if let [only] = senders[..] {
            self.ban(only, now, out);
        } else {
            for (index, (data, sender)) in attempt.pieces.iter().flatten().enumerate() {
                if self.suspects.len() < SUSPECT_MEMORY {
                    let digest = Sha1::digest(data).into();
                    self.suspects
                        .push((index as u32, attempt.size, digest, *sender));
                }
            }
        }
        // From now on one peer at a time sends the whole dict, so a failure has one culprit.
        self.parole = true;
    }

    /// The size to fetch: the one most connected peers announce (the smaller on a tie).
    pub(super) fn target_size(&self) -> Option<u32> {
        let mut votes: BTreeMap<u32, usize> = BTreeMap::new();
        for size in self.peers.values().filter_map(FetchPeer::size) {
            *votes.entry(size).or_default() += 1;
        }
        votes
            .into_iter()
            .max_by_key(|(size, n)| (*n, std::cmp::Reverse(*size)))
            .map(|(size, _)| size)
    }

    /// Starts an attempt if needed and sends the requests the limits allow.
    pub(super) fn request_more(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        // An attempt whose size no connected peer announces any more starts over.
        if let Some(a) = &self.attempt
            && !self.peers.values().any(|p| p.size() == Some(a.size))
        {
            self.attempt = None;
        }
        if self.attempt.is_none() {
            let Some(size) = self.target_size() else {
                return;
            };
            let count = metadata_piece_count(size) as usize;
            self.attempt = Some(Attempt {
                size,
                pieces: vec![None; count],
                solo: None,
            });
        }
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        let size = attempt.size;
        let missing: Vec<u32> = (0..attempt.pieces.len() as u32)
            .filter(|i| attempt.pieces.get(*i as usize).is_some_and(|p| p.is_none()))
            .filter(|i| !self.peers.values().any(|p| p.requests.contains_key(i)))
            .collect();
        if self.parole {
            // One peer sends the whole dict; one that refuses a piece makes way for another.
            let solo_ok = attempt
                .solo
                .and_then(|k| self.peers.get(&k))
                .is_some_and(|p| {
                    p.size() == Some(size) && !missing.iter().any(|i| p.refuses(*i, now))
                });
            if !solo_ok {
                attempt.solo = self
                    .peers
                    .values()
                    .filter(|p| p.size() == Some(size))
                    .filter(|p| !missing.iter().any(|i| p.refuses(*i, now)))
                    .min_by_key(|p| p.failures())
                    .map(|p| p.key);
            }
        }
        let solo = attempt.solo.filter(|_| self.parole);
        for piece in missing {
            let peer = self
                .peers
                .values_mut()
                .filter(|p| p.size() == Some(size) && solo.is_none_or(|s| s == p.key))
                .filter(|p| p.requests.len() < PER_PEER_REQUESTS && !p.refuses(piece, now))
                .min_by_key(|p| (p.requests.len(), p.failures()));
            let Some(peer) = peer else {
                if self.parole && solo.is_none() {
                    break;
                }
                continue;
            };
            let Some((ext, _)) = peer.ut_metadata else {
                continue;
            };
            peer.requests.insert(piece, now);
            let payload = MetadataMessage::Request { piece }.to_bytes();
            peer.send(Message::Extended { id: ext, payload }, now, out);
        }
    }
}

/// The SHA-1 of metadata piece `index` of `dict`.
fn piece_digest(dict: &[u8], index: u32) -> Option<[u8; 20]> {
    let size = u32::try_from(dict.len()).ok()?;
    let len = metadata_piece_len(size, index)? as usize;
    let begin = (index as usize).checked_mul(METADATA_PIECE_LEN as usize)?;
    let piece = dict.get(begin..begin.checked_add(len)?)?;
    Some(Sha1::digest(piece).into())
}
