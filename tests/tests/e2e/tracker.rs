//! rill-tracker in process on port 0, over HTTP and UDP.
