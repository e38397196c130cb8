-- afregning's result tables (docs/sinks.md, docs/decisions/0060-0064).
--
-- Every table has its natural key as primary key and the position it was read
-- from (source_topic, source_partition, source_offset) as provenance. All names
-- are unqualified: the tables land in the first schema of the search_path, so
-- a test's own schema works like production's `public`.
--
-- `metering_data` is not here: its shape depends on whether the server offers
-- TimescaleDB (hypertable) or not (monthly range partitions), so the sink plans
-- it in Rust after these migrations (sinks/src/schema/storage.rs).

-- Where each sink's consumer is, per topic partition: the truth the sink seeks
-- to on start. Written in the same transaction as the data, so the two can
-- never disagree; Kafka's group offsets only mirror it for lag tools.
CREATE TABLE sink_offset (
    consumer text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL CHECK (partition >= 0),
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);

-- Every input record a sink applied, by the producer's idempotency key (the
-- `afregning-idempotency-key` header, or a key derived from the record). The
-- ERP sink's gate against publishing twice; the database sink's audit trail
-- and duplicate counter (its tables are idempotent by their natural keys).
CREATE TABLE processed_message (
    consumer text NOT NULL,
    idempotency_key text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, idempotency_key)
);
CREATE INDEX processed_message_processed_at ON processed_message (processed_at);

-- One metering point's energy for one Danish calendar day and tariff period
-- (`total` when the aggregate has no tariff periods). Day-level columns repeat
-- on each tariff period's row; the view daily_summary_day has one row per day.
-- A newer version of a day replaces all of the day's rows; an older one is ignored.
CREATE TABLE daily_summary (
    gsrn text COLLATE "C" NOT NULL,
    local_date date NOT NULL,
    tariff_period text NOT NULL,
    grid_area text NOT NULL,
    price_area text,
    resolution text NOT NULL,
    kwh numeric(18,3) NOT NULL,
    day_total_kwh numeric(18,3) NOT NULL,
    spot_cost_dkk numeric(18,6),
    expected_positions integer NOT NULL,
    received_positions integer NOT NULL,
    complete boolean NOT NULL,
    version bigint NOT NULL,
    computed_at timestamptz NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    PRIMARY KEY (gsrn, local_date, tariff_period)
);
CREATE INDEX daily_summary_grid_area_date ON daily_summary (grid_area, local_date);
CREATE INDEX daily_summary_local_date ON daily_summary (local_date);

-- Metering point master data, one row per validity period: the latest record
-- the compacted topic holds for (gsrn, valid_from). A tombstone deletes it.
CREATE TABLE metering_point (
    gsrn text COLLATE "C" NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_to timestamptz,
    metering_point_type text NOT NULL,
    settlement_method text,
    grid_area text NOT NULL,
    price_area text,
    resolution text NOT NULL,
    energy_supplier_gln text,
    supply_start timestamptz,
    supply_end timestamptz,
    connection_state text,
    source_message_id text NOT NULL,
    received_at timestamptz NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    PRIMARY KEY (gsrn, valid_from)
);
CREATE INDEX metering_point_grid_area ON metering_point (grid_area);

-- Every master data record ever received (append only): what metering_point
-- said when, keyed by the DataHub message that said it.
CREATE TABLE metering_point_history (
    gsrn text COLLATE "C" NOT NULL,
    valid_from timestamptz NOT NULL,
    source_message_id text NOT NULL,
    valid_to timestamptz,
    metering_point_type text NOT NULL,
    settlement_method text,
    grid_area text NOT NULL,
    price_area text,
    resolution text NOT NULL,
    energy_supplier_gln text,
    supply_start timestamptz,
    supply_end timestamptz,
    connection_state text,
    received_at timestamptz NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    PRIMARY KEY (gsrn, valid_from, source_message_id)
);

-- Versions of a metering point-month's provisional settlement (the header of
-- settlement_line). Immutable: a new version is a new row.
CREATE TABLE settlement_version (
    gsrn text COLLATE "C" NOT NULL,
    month_start date NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    grid_area text NOT NULL,
    energy_supplier_gln text,
    total_excl_vat numeric(18,6) NOT NULL,
    vat_amount numeric(18,6) NOT NULL,
    total_incl_vat numeric(18,6) NOT NULL,
    days_settled integer NOT NULL,
    days_in_month integer NOT NULL,
    idempotency_key text NOT NULL,
    computed_at timestamptz NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    PRIMARY KEY (gsrn, month_start, version)
);
CREATE INDEX settlement_version_month ON settlement_version (month_start);

-- The lines of each version, immutable: a new version never overwrites an old
-- one (a trigger refuses UPDATE); settlement_line_latest gives the latest.
CREATE TABLE settlement_line (
    gsrn text COLLATE "C" NOT NULL,
    month_start date NOT NULL,
    version bigint NOT NULL,
    line_no integer NOT NULL,
    component text NOT NULL,
    description text NOT NULL,
    charge_owner_gln text,
    charge_type text,
    charge_code text,
    quantity numeric(18,6) NOT NULL,
    quantity_unit text NOT NULL,
    unit_price numeric(18,6) NOT NULL,
    amount numeric(18,6) NOT NULL,
    vat_class text NOT NULL,
    idempotency_key text NOT NULL,
    PRIMARY KEY (gsrn, month_start, version, line_no),
    FOREIGN KEY (gsrn, month_start, version) REFERENCES settlement_version
);

-- Final statements and credit notes, immutable (a correction is a credit note
-- plus a new statement, never a change).
CREATE TABLE settlement_statement (
    statement_id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('STATEMENT', 'CREDIT_NOTE')),
    corrects_statement_id text,
    gsrn text COLLATE "C" NOT NULL,
    month_start date NOT NULL,
    grid_area text NOT NULL,
    energy_supplier_gln text,
    version bigint NOT NULL,
    total_excl_vat numeric(18,6) NOT NULL,
    vat_amount numeric(18,6) NOT NULL,
    total_incl_vat numeric(18,6) NOT NULL,
    currency text NOT NULL,
    idempotency_key text NOT NULL,
    issued_at timestamptz NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL
);
CREATE INDEX settlement_statement_month ON settlement_statement (gsrn, month_start);
CREATE INDEX settlement_statement_idempotency_key ON settlement_statement (idempotency_key);

CREATE TABLE settlement_statement_line (
    statement_id text NOT NULL REFERENCES settlement_statement,
    line_no integer NOT NULL,
    component text NOT NULL,
    description text NOT NULL,
    charge_owner_gln text,
    charge_type text,
    charge_code text,
    quantity numeric(18,6) NOT NULL,
    quantity_unit text NOT NULL,
    unit_price numeric(18,6) NOT NULL,
    amount numeric(18,6) NOT NULL,
    vat_class text NOT NULL,
    version bigint NOT NULL,
    idempotency_key text NOT NULL,
    PRIMARY KEY (statement_id, line_no)
);

-- Records a component gave up on. Keyed by where the failed record was. The
-- operator procedure marks a row resolved (resolved_by, resolved_at, note)
-- after fixing the cause and replaying; a later failure of the same record
-- reopens it, a replay of the same dead letter changes nothing.
CREATE TABLE dead_letter (
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    source_timestamp timestamptz,
    source_key bytea,
    payload bytea,
    source_message_id text,
    component text NOT NULL,
    error_class text NOT NULL,
    reason text NOT NULL,
    failed_at timestamptz NOT NULL,
    attempts integer NOT NULL,
    resolved boolean NOT NULL DEFAULT false,
    resolved_by text,
    resolved_at timestamptz,
    resolution_note text,
    dead_letter_partition integer NOT NULL,
    dead_letter_offset bigint NOT NULL,
    PRIMARY KEY (source_topic, source_partition, source_offset),
    CHECK (NOT resolved OR resolved_by IS NOT NULL)
);
CREATE INDEX dead_letter_unresolved ON dead_letter (component, error_class) WHERE NOT resolved;

-- Immutability of versioned rows, enforced by the database itself.
CREATE FUNCTION afregning_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable: a correction is a new version', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER settlement_version_immutable BEFORE UPDATE ON settlement_version
    FOR EACH ROW EXECUTE FUNCTION afregning_refuse_update();
CREATE TRIGGER settlement_line_immutable BEFORE UPDATE ON settlement_line
    FOR EACH ROW EXECUTE FUNCTION afregning_refuse_update();
CREATE TRIGGER settlement_statement_immutable BEFORE UPDATE ON settlement_statement
    FOR EACH ROW EXECUTE FUNCTION afregning_refuse_update();
CREATE TRIGGER settlement_statement_line_immutable BEFORE UPDATE ON settlement_statement_line
    FOR EACH ROW EXECUTE FUNCTION afregning_refuse_update();
