//! Magnet links (BEP 9, BEP 53).
