//! rill-tracker.
