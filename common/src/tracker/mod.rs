//! The tracker protocol shared by client and tracker: HTTP (BEP 3, 7, 23, 48) and UDP (BEP 15, 41).

pub mod http;
