-- Private mode's tables (rill-tracker). Integers are SQLite's 64-bit signed integers;
-- counters are clamped to i64::MAX by the code that binds them.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    passkey         TEXT    NOT NULL UNIQUE,
    disabled_reason TEXT    NULL,
    created_at      INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);

-- AUTOINCREMENT: a removed torrent's id is never reused, so stats rows left behind by
-- `remove_torrent` never count for a torrent registered later.
CREATE TABLE torrents (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    info_hash                 BLOB    NOT NULL UNIQUE CHECK (length(info_hash) = 20),
    freeleech                 INTEGER NOT NULL DEFAULT 0 CHECK (freeleech IN (0, 1)),
    upload_multiplier_percent INTEGER NOT NULL DEFAULT 100 CHECK (upload_multiplier_percent >= 0)
);

-- Credited totals per (user, torrent). No foreign keys on purpose: a batch that names a
-- torrent removed meanwhile must still be written, never fail the flush forever.
CREATE TABLE user_torrent (
    user_id      INTEGER NOT NULL,
    torrent_id   INTEGER NOT NULL,
    uploaded     INTEGER NOT NULL DEFAULT 0,
    downloaded   INTEGER NOT NULL DEFAULT 0,
    snatches     INTEGER NOT NULL DEFAULT 0,
    seeding_secs INTEGER NOT NULL DEFAULT 0,
    seeded_until INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, torrent_id)
) WITHOUT ROWID;

-- Peer baselines (the ledger's `PeerRecord`), written in the same transaction as credits.
CREATE TABLE peers (
    user_id    INTEGER NOT NULL,
    torrent_id INTEGER NOT NULL,
    peer_id    BLOB    NOT NULL CHECK (length(peer_id) = 20),
    uploaded   INTEGER NOT NULL,
    downloaded INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    seeder     INTEGER NOT NULL CHECK (seeder IN (0, 1)),
    snatched   INTEGER NOT NULL CHECK (snatched IN (0, 1)),
    carry      INTEGER NOT NULL CHECK (carry BETWEEN 0 AND 99),
    PRIMARY KEY (user_id, torrent_id, peer_id)
) WITHOUT ROWID;

CREATE TABLE allowed_clients (
    prefix TEXT NOT NULL PRIMARY KEY
);
