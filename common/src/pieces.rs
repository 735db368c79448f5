//! Piece indexes and blocks (the 16 KiB request unit).
