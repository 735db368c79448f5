//! Tests of the pure node.
use super::*;
