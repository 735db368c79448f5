//! One node's entry and one k-bucket (BEP 5).
//!
//! Node status follows the BEP: **good** if it answered one of our queries in the last
//! [`GOOD_FOR`] (15 minutes), or answered once and queried us in that time; **bad** after
//! [`MAX_FAILURES`] queries in a row went unanswered (one for a node that never answered);
//! **questionable** otherwise. A bucket holds at most [`K`] nodes and [`K`] replacements (the
//! table keeps to that; this file only holds the data).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::time::Instant;

use rill_common::krpc::CompactNode;

use super::{GOOD_FOR, K, MAX_FAILURES};

/// How we heard from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contact {
    /// It answered one of our queries.
    Responded,
    /// It sent us a query.
    Queried,
}

/// A node's standing (BEP 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Answered recently.
    Good,
    /// Not heard from in 15 minutes.
    Questionable,
    /// Failed to answer several queries in a row.
    Bad,
}

/// One node in the table, with what we know of its liveness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its id and address.
    pub node: CompactNode,
    /// When it last answered one of our queries.
    pub last_response: Option<Instant>,
    /// When it last sent us a query.
    pub last_query: Option<Instant>,
    /// Queries in a row it did not answer.
    pub failures: u8,
}

impl Entry {
    pub(super) fn new(node: CompactNode, contact: Contact, now: Instant) -> Self {
        let mut entry = Entry {
            node,
            last_response: None,
            last_query: None,
            failures: 0,
        };
        entry.touch(contact, now);
        entry
    }

    pub(super) fn touch(&mut self, contact: Contact, now: Instant) {
        match contact {
            Contact::Responded => {
                self.last_response = Some(now);
                self.failures = 0;
            }
            Contact::Queried => self.last_query = Some(now),
        }
    }

    /// The node's status at `now`.
    pub fn status(&self, now: Instant) -> Status {
        let fresh =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < GOOD_FOR);
        if self.failures >= MAX_FAILURES || (self.last_response.is_none() && self.failures > 0) {
            Status::Bad
        } else if fresh(self.last_response)
            || (self.last_response.is_some() && fresh(self.last_query))
        {
            Status::Good
        } else {
            Status::Questionable
        }
    }

    pub(super) fn last_seen(&self) -> Option<Instant> {
        self.last_response.max(self.last_query)
    }
}

#[derive(Clone, Debug)]
pub(super) struct Bucket {
    pub(super) nodes: Vec<Entry>,
    pub(super) replacements: Vec<Entry>,
    pub(super) last_changed: Instant,
}

impl Bucket {
    pub(super) fn new(now: Instant) -> Self {
        Bucket {
            nodes: Vec::with_capacity(K),
            replacements: Vec::new(),
            last_changed: now,
        }
    }
}
