//! The swarm store: the peers of every torrent, as plain synchronous state (no I/O).
