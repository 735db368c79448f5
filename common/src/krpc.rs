//! DHT messages (BEP 5): KRPC queries, responses and errors, compact node info.
