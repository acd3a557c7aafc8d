-- Supervision outcomes (dispatch.core.supervision): one row per incident, rewritten with every
-- snapshot the history copies, so that a month of statistics is one scan of this table with
-- no join and no audit read. The milestones are columns (status, seconds from the report,
-- breach cause) rather than rows: a breakdown groups one row per incident.

CREATE TABLE incident_outcome (
    incident text PRIMARY KEY REFERENCES incident (id) ON DELETE CASCADE,
    reported_at timestamptz NOT NULL,
    area text,
    team text,
    category text NOT NULL,
    source text NOT NULL,
    priority integer NOT NULL,
    hour smallint NOT NULL,  -- local hour of the report, in the center's zone
    phase text NOT NULL,
    respond_status text NOT NULL,
    respond_s double precision,
    respond_cause text,
    turn_out_status text NOT NULL,
    turn_out_s double precision,
    turn_out_cause text,
    arrive_status text NOT NULL,
    arrive_s double precision,
    arrive_cause text,
    handle_status text NOT NULL,
    handle_s double precision,
    handle_cause text,
    redispatches jsonb NOT NULL,  -- {reason: count}
    escalations jsonb NOT NULL,  -- {ladder level: count}
    orders integer NOT NULL,
    orders_refused integer NOT NULL,
    orders_unanswered integer NOT NULL,
    on_scene_s integer NOT NULL  -- of all its officers together
);
CREATE INDEX incident_outcome_by_time ON incident_outcome (reported_at);
CREATE INDEX incident_outcome_by_area ON incident_outcome (area, reported_at);
CREATE INDEX incident_outcome_by_team ON incident_outcome (team, reported_at);
CREATE INDEX incident_outcome_by_category ON incident_outcome (category, reported_at);
CREATE INDEX incident_outcome_by_source ON incident_outcome (source, reported_at);

-- Each officer's part in an incident: the officer breakdown and the workload.
CREATE TABLE incident_outcome_officer (
    incident text NOT NULL REFERENCES incident_outcome (incident) ON DELETE CASCADE,
    officer text NOT NULL,
    orders integer NOT NULL,
    refused integer NOT NULL,
    unanswered integer NOT NULL,
    on_scene_s integer NOT NULL,
    PRIMARY KEY (incident, officer)
);
CREATE INDEX incident_outcome_officer_by_officer ON incident_outcome_officer (officer);
