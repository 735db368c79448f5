//! The set of pieces a peer has (BEP 3 `bitfield`): bit 0 is the high bit of byte 0.
