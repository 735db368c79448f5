//! libtorrent and Transmission announce to rill-tracker, find each other and transfer.
