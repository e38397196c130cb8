-- The ERP sink's record of what it delivered (docs/decisions/0064).

-- One row per file export ("billing run"): which statements went into which files.
CREATE TABLE erp_export_run (
    run_id bigserial PRIMARY KEY,
    month_start date,
    created_at timestamptz NOT NULL DEFAULT now(),
    statements integer NOT NULL,
    csv_file text NOT NULL,
    json_file text NOT NULL
);

-- Every statement and credit note published to the ERP topic, once. `document`
-- is the statement as published (to detect a silent change of an already
-- delivered statement); erp_partition/erp_offset say where it is in the ERP
-- topic; `recovered` marks rows found there by the start-up reconciliation
-- (published just before a crash, before this row could be written).
CREATE TABLE erp_delivery (
    statement_id text PRIMARY KEY,
    idempotency_key text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('STATEMENT', 'CREDIT_NOTE')),
    corrects_statement_id text,
    gsrn text COLLATE "C" NOT NULL,
    month_start date NOT NULL,
    version bigint NOT NULL,
    total_incl_vat numeric(18,6) NOT NULL,
    document jsonb NOT NULL,
    erp_topic text NOT NULL,
    erp_partition integer NOT NULL,
    erp_offset bigint NOT NULL,
    delivered_at timestamptz NOT NULL DEFAULT now(),
    recovered boolean NOT NULL DEFAULT false,
    export_run_id bigint REFERENCES erp_export_run
);
CREATE INDEX erp_delivery_month ON erp_delivery (gsrn, month_start);
CREATE INDEX erp_delivery_unexported ON erp_delivery (month_start) WHERE export_run_id IS NULL;

-- ERP deliveries per month, for the dashboard.
CREATE VIEW erp_deliveries_month AS
SELECT
    month_start,
    (month_start::timestamp AT TIME ZONE 'Europe/Copenhagen') AS month,
    count(*) FILTER (WHERE kind = 'STATEMENT') AS statements,
    count(*) FILTER (WHERE kind = 'CREDIT_NOTE') AS credit_notes,
    sum(total_incl_vat) AS total_incl_vat_dkk,
    count(*) FILTER (WHERE export_run_id IS NULL) AS not_exported
FROM erp_delivery
GROUP BY month_start;
