-- Replay runs (issue 14, decision 0090): who recalculated what, why, from where,
-- and what changed. Written by `afregning replay`; the processors never touch it.
CREATE TABLE replay_run (
    run_id text PRIMARY KEY,
    operator text NOT NULL CHECK (operator <> ''),
    reason text NOT NULL CHECK (reason <> ''),
    processor text NOT NULL,
    -- Per partition, per input topic: the first offset re-read, and the end when the run started.
    partitions integer[] NOT NULL,
    grid_areas text[] NOT NULL DEFAULT '{}',
    start_offsets jsonb NOT NULL,
    end_offsets jsonb NOT NULL,
    -- How a time was turned into offsets: per partition and topic, "broker" or "search".
    offset_sources jsonb NOT NULL DEFAULT '{}',
    from_time timestamptz,
    to_time timestamptz,
    recompute_from timestamptz,
    recompute_to timestamptz,
    dry_run boolean NOT NULL,
    state text NOT NULL CHECK (state IN ('running', 'done', 'failed', 'interrupted')),
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    -- What the tasks reported: per partition `applied` and `caught-up`.
    reports jsonb NOT NULL DEFAULT '{}',
    summary jsonb,
    error text
);

CREATE INDEX replay_run_started ON replay_run (started_at DESC);
