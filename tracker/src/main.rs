//! The `rill-tracker` command.
fn main() {}
