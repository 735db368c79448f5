//! The `rill` command.
fn main() {}
