-- The incident history: every incident's latest snapshot, its milestones, and the audit trail
-- the engine recorded, copied from Redis by the history worker. `position` is the Redis stream
-- id as one number (milliseconds × 10^6 + sequence): the copy is keyed by it, so a replay
-- after a crash inserts nothing twice.

CREATE TABLE incident (
    id text PRIMARY KEY,
    category text NOT NULL,
    priority integer NOT NULL,
    source text NOT NULL,
    team text,
    area text,  -- the innermost area at the place, when the center has a city
    phase text NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    officers text[] NOT NULL DEFAULT '{}',  -- everyone ever ordered to it
    reported_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,  -- its newest audit record
    version bigint NOT NULL,  -- the position of the newest audit record copied with it
    snapshot jsonb NOT NULL,
    evicted boolean NOT NULL DEFAULT false  -- gone from Redis and the engine's memory
);
CREATE INDEX incident_by_time ON incident (reported_at DESC);
CREATE INDEX incident_by_area ON incident (area, reported_at DESC);
CREATE INDEX incident_by_team ON incident (team, reported_at DESC);
CREATE INDEX incident_by_officer ON incident USING gin (officers);
CREATE INDEX incident_to_evict ON incident (last_at)
    WHERE phase IN ('closed', 'cancelled', 'merged') AND NOT evicted;

CREATE TABLE incident_milestone (
    incident text NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    milestone text NOT NULL,
    due_at timestamptz,
    reached_at timestamptz NOT NULL,
    late_by_s double precision NOT NULL,
    by text NOT NULL,
    via text NOT NULL,
    PRIMARY KEY (incident, milestone)
);

CREATE TABLE incident_audit (
    position bigint PRIMARY KEY,
    stream_id text NOT NULL,
    incident text,
    related text,  -- another incident it names: the one a duplicate was merged into
    at timestamptz NOT NULL,
    kind text NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX incident_audit_by_incident ON incident_audit (incident, position);
CREATE INDEX incident_audit_by_related ON incident_audit (related, position)
    WHERE related IS NOT NULL;
CREATE INDEX incident_audit_by_time ON incident_audit (at);

-- How far each Redis stream has been copied, written in the same transaction as the rows.
CREATE TABLE history_cursor (
    stream text PRIMARY KEY,
    position bigint NOT NULL,
    stream_id text NOT NULL
);
