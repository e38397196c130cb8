-- Reconciliation with DataHub's wholesale settlement (issue 17, docs/reconciliation.md).
--
-- DataHub's results (RSM-019, RSM-014) as validate mapped them: one row per series and
-- run. Every run is kept (decision 0121): a correction run is new rows, never an update.
CREATE TABLE wholesale_result (
    source_message_id text NOT NULL,
    transaction_id text NOT NULL,
    kind text NOT NULL,
    business_reason text NOT NULL,
    settlement_version text,
    calculation_version text,
    grid_area text NOT NULL,
    energy_supplier_gln text,
    balance_responsible_gln text,
    metering_point_type text,
    settlement_method text,
    charge_owner_gln text,
    charge_type text,
    charge_code text,
    unit text NOT NULL,
    currency text,
    resolution text NOT NULL,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_message_id, transaction_id)
);

CREATE INDEX wholesale_result_area_period ON wholesale_result (grid_area, period_start);

-- The positions of a series: quantity (kWh or pieces), price and amount (DKK) exactly as sent.
CREATE TABLE wholesale_result_point (
    source_message_id text NOT NULL,
    transaction_id text NOT NULL,
    position integer NOT NULL,
    quantity numeric,
    price numeric,
    amount numeric,
    quality text,
    PRIMARY KEY (source_message_id, transaction_id, position),
    FOREIGN KEY (source_message_id, transaction_id)
        REFERENCES wholesale_result (source_message_id, transaction_id) ON DELETE CASCADE
);

-- Each version of a grid area's month's reconciliation (the reconcile processor publishes a
-- new one whenever the outcome changes). A version with no discrepancy is a row with
-- discrepancy_count 0: reconciled, nothing differs.
CREATE TABLE reconciliation (
    grid_area text NOT NULL,
    month_start date NOT NULL,
    version bigint NOT NULL,
    energy_supplier_gln text NOT NULL,
    grid_area_owner_gln text,
    parts integer NOT NULL CHECK (parts > 0),
    discrepancy_count integer NOT NULL CHECK (discrepancy_count >= 0),
    calculations text NOT NULL,
    computed_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (grid_area, month_start, version)
);

-- One discrepancy: what (level, measure), where (charge, position), both values, the
-- difference (DataHub's minus ours) and our metering points behind our value.
CREATE TABLE reconciliation_discrepancy (
    grid_area text NOT NULL,
    month_start date NOT NULL,
    version bigint NOT NULL,
    seq integer NOT NULL,
    level text NOT NULL,
    measure text NOT NULL,
    charge_owner_gln text,
    charge_code text,
    charge_type text,
    resolution text NOT NULL,
    metering_point_type text,
    settlement_method text,
    position_start timestamptz NOT NULL,
    datahub numeric,
    ours numeric,
    difference numeric NOT NULL,
    metering_points text[] NOT NULL,
    calculation text,
    PRIMARY KEY (grid_area, month_start, version, seq),
    FOREIGN KEY (grid_area, month_start, version)
        REFERENCES reconciliation (grid_area, month_start, version) ON DELETE CASCADE
);

-- The latest complete version per grid area and month: what `afregning reconcile report`
-- prints. A version whose parts have not all arrived is not complete and not current yet.
CREATE VIEW reconciliation_current AS
SELECT DISTINCT ON (r.grid_area, r.month_start) r.*
FROM reconciliation r
WHERE r.discrepancy_count = (
    SELECT count(*) FROM reconciliation_discrepancy d
    WHERE d.grid_area = r.grid_area AND d.month_start = r.month_start AND d.version = r.version
)
ORDER BY r.grid_area, r.month_start, r.version DESC;
