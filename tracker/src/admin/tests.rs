//! Tests of the admin commands and the REST API.
