-- The swarms (both modes): the saved form of the swarm store (`swarm::snapshot`), one row
-- per part, replaced whole at every save, so that a restart keeps peers and scrape counts.
CREATE TABLE swarms (
    part     BIGINT NOT NULL PRIMARY KEY,
    saved_at BIGINT NOT NULL,
    data     BYTEA  NOT NULL
);
