//! Peer connections (BEP 3): the TCP shells that move wire messages between sockets and a torrent.
