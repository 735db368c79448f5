//! `.torrent` files (BEP 3, 12, 19, 27, 47, 52).
