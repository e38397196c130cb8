-- Dead letters re-submitted by `afregning replay dead-letters` (issue 14): a
-- replay run of its own kind, and per dead letter where the record went again.
ALTER TABLE replay_run ADD COLUMN kind text NOT NULL DEFAULT 'recalculate'
    CHECK (kind IN ('recalculate', 'dead-letters'));

CREATE TABLE replay_resubmission (
    run_id text NOT NULL REFERENCES replay_run (run_id),
    -- The dead letter (its source record).
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    -- Where it was produced again.
    resubmitted_partition integer NOT NULL,
    resubmitted_offset bigint NOT NULL,
    -- Copied from the source topic (true) or, with the source record gone, from the dead letter.
    from_source boolean NOT NULL,
    resubmitted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, source_topic, source_partition, source_offset)
);

CREATE INDEX replay_resubmission_letter
    ON replay_resubmission (source_topic, source_partition, source_offset);
