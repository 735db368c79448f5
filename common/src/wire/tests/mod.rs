//! Tests of the peer wire codecs: known answers from the BEP texts, partial input, caps,
//! round trips and hostile input.

mod codec;
mod extension;
mod handshake;
