-- The swarms (both modes): the saved form of the swarm store (`swarm::snapshot`), one row
-- per part, replaced whole at every save, so that a restart keeps peers and scrape counts.
CREATE TABLE swarms (
    part     INTEGER NOT NULL PRIMARY KEY,
    saved_at INTEGER NOT NULL,
    data     BLOB    NOT NULL
);
