-- Private mode's tables (rill-tracker), PostgreSQL. The same tables and semantics as
-- migrations/sqlite/0001_initial.sql: BIGINT counters clamped to i64::MAX by the code that
-- binds them, BOOLEAN flags, BYTEA hashes and peer ids.

CREATE TABLE users (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT   NOT NULL UNIQUE,
    passkey         TEXT   NOT NULL UNIQUE,
    disabled_reason TEXT   NULL,
    created_at      BIGINT NOT NULL DEFAULT (EXTRACT(EPOCH FROM now())::BIGINT)
);

-- Identity columns never reuse an id, so stats rows left behind by `remove_torrent`
-- never count for a torrent registered later.
CREATE TABLE torrents (
    id                        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    info_hash                 BYTEA   NOT NULL UNIQUE CHECK (length(info_hash) = 20),
    freeleech                 BOOLEAN NOT NULL DEFAULT FALSE,
    upload_multiplier_percent BIGINT  NOT NULL DEFAULT 100 CHECK (upload_multiplier_percent >= 0)
);

-- Credited totals per (user, torrent). No foreign keys on purpose: a batch that names a
-- torrent removed meanwhile must still be written, never fail the flush forever.
CREATE TABLE user_torrent (
    user_id      BIGINT NOT NULL,
    torrent_id   BIGINT NOT NULL,
    uploaded     BIGINT NOT NULL DEFAULT 0,
    downloaded   BIGINT NOT NULL DEFAULT 0,
    snatches     BIGINT NOT NULL DEFAULT 0,
    seeding_secs BIGINT NOT NULL DEFAULT 0,
    seeded_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, torrent_id)
);

-- Peer baselines (the ledger's `PeerRecord`), written in the same transaction as credits.
CREATE TABLE peers (
    user_id    BIGINT  NOT NULL,
    torrent_id BIGINT  NOT NULL,
    peer_id    BYTEA   NOT NULL CHECK (length(peer_id) = 20),
    uploaded   BIGINT  NOT NULL,
    downloaded BIGINT  NOT NULL,
    last_seen  BIGINT  NOT NULL,
    seeder     BOOLEAN NOT NULL,
    snatched   BOOLEAN NOT NULL,
    carry      BIGINT  NOT NULL CHECK (carry BETWEEN 0 AND 99),
    PRIMARY KEY (user_id, torrent_id, peer_id)
);

-- remove_torrent deletes a torrent's baselines.
CREATE INDEX peers_torrent ON peers (torrent_id);

CREATE TABLE allowed_clients (
    prefix TEXT NOT NULL PRIMARY KEY
);
