-- The portfolio read model (issue 16; docs/portfolio.md): a projection of the portfolio events
-- topic, rebuilt from it at will. Rows per metering point are replaced as a whole when one of
-- its events is applied, so the tables always equal the fold of the events up to `version`.
-- Personal data never appears here: customers are our pseudonymous customer keys.

CREATE TABLE IF NOT EXISTS portfolio_metering_points (
    metering_point text PRIMARY KEY,
    -- the metering point's last applied event sequence number (idempotent re-delivery)
    version bigint NOT NULL,
    grid_area text,
    metering_point_type text,
    settlement_method text
);

CREATE TABLE IF NOT EXISTS portfolio_supply_periods (
    metering_point text NOT NULL,
    ordinal integer NOT NULL,
    valid_from date NOT NULL,
    valid_to date,
    customer_key text,
    started_by text NOT NULL,
    -- set for a period taken out by a correction or a later start (to be credited)
    retired_by text,
    PRIMARY KEY (metering_point, ordinal)
);

CREATE INDEX IF NOT EXISTS portfolio_supply_periods_days
    ON portfolio_supply_periods (valid_from, valid_to) WHERE retired_by IS NULL;

CREATE TABLE IF NOT EXISTS portfolio_processes (
    metering_point text NOT NULL,
    process_id text NOT NULL,
    kind text NOT NULL,
    brs text,
    supplier text NOT NULL,
    effective date NOT NULL,
    took_effect_on date,
    status text NOT NULL,
    -- DataHub's Reason[] of a rejection, or the reason of a cancellation
    reasons jsonb NOT NULL DEFAULT '[]',
    customer_key text,
    corrects text,
    datahub_ref text,
    requested_by_us boolean NOT NULL,
    PRIMARY KEY (metering_point, process_id)
);

CREATE TABLE IF NOT EXISTS portfolio_process_history (
    metering_point text NOT NULL,
    sequence bigint NOT NULL,
    process_id text,
    change text NOT NULL,
    recorded_at timestamptz NOT NULL,
    actor text NOT NULL,
    why text NOT NULL,
    message_id text,
    -- the process's status after the event
    status_after text,
    PRIMARY KEY (metering_point, sequence)
);
