//! Announcing to trackers (BEP 3, 12, 15, 23): when to announce, and the HTTP and UDP clients.
