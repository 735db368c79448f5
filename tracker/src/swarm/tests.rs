//! Unit tests and proptests of the swarm store.
