-- Views for operators and the Grafana dashboard (deploy/grafana/dashboards/afregning.json).
-- Every dashboard query reads these, so a schema change that breaks a panel breaks
-- sinks/tests/dashboard.rs first. Days are Danish calendar days; `day` and `month`
-- are their start in Europe/Copenhagen as timestamptz, for Grafana's time axis.

-- The master data valid now, per metering point.
CREATE VIEW metering_point_current AS
SELECT DISTINCT ON (gsrn) *
FROM metering_point
WHERE valid_from <= now() AND (valid_to IS NULL OR valid_to > now())
ORDER BY gsrn, valid_from DESC;

-- One row per metering point and day (daily_summary has one per tariff period).
CREATE VIEW daily_summary_day AS
SELECT DISTINCT ON (gsrn, local_date)
    gsrn, local_date, grid_area, price_area, resolution,
    day_total_kwh AS kwh, spot_cost_dkk, expected_positions, received_positions,
    complete, version, computed_at
FROM daily_summary
ORDER BY gsrn, local_date, tariff_period;

-- Consumption per grid area per day.
CREATE VIEW consumption_per_grid_area_day AS
SELECT
    grid_area,
    local_date,
    (local_date::timestamp AT TIME ZONE 'Europe/Copenhagen') AS day,
    sum(kwh) AS kwh,
    count(*) AS metering_points,
    sum(spot_cost_dkk) AS spot_cost_dkk
FROM daily_summary_day
GROUP BY grid_area, local_date;

-- The same per tariff period (low, high, peak, ...).
CREATE VIEW consumption_per_grid_area_day_tariff AS
SELECT
    grid_area,
    local_date,
    (local_date::timestamp AT TIME ZONE 'Europe/Copenhagen') AS day,
    tariff_period,
    sum(kwh) AS kwh
FROM daily_summary
GROUP BY grid_area, local_date, tariff_period;

-- The latest provisional version of each metering point-month, and its lines.
CREATE VIEW settlement_version_latest AS
SELECT DISTINCT ON (gsrn, month_start) *
FROM settlement_version
ORDER BY gsrn, month_start, version DESC;

CREATE VIEW settlement_line_latest AS
SELECT l.*, v.grid_area
FROM settlement_line l
JOIN settlement_version_latest v USING (gsrn, month_start, version);

-- Settlement totals per month and component: the latest provisional versions,
-- and the final statements net of credit notes (whose lines are negative).
CREATE VIEW settlement_totals_month_component AS
SELECT
    month_start,
    (month_start::timestamp AT TIME ZONE 'Europe/Copenhagen') AS month,
    component,
    'provisional'::text AS basis,
    count(DISTINCT gsrn) AS metering_points,
    sum(quantity) AS quantity,
    sum(amount) AS amount_dkk
FROM settlement_line_latest
GROUP BY month_start, component
UNION ALL
SELECT
    s.month_start,
    (s.month_start::timestamp AT TIME ZONE 'Europe/Copenhagen') AS month,
    l.component,
    'final'::text AS basis,
    count(DISTINCT s.gsrn) AS metering_points,
    sum(l.quantity) AS quantity,
    sum(l.amount) AS amount_dkk
FROM settlement_statement s
JOIN settlement_statement_line l USING (statement_id)
GROUP BY s.month_start, l.component;

-- Unresolved dead letters per component and error class.
CREATE VIEW dead_letter_backlog AS
SELECT
    component,
    error_class,
    count(*) AS unresolved,
    min(failed_at) AS oldest_failed_at,
    max(failed_at) AS newest_failed_at,
    extract(epoch FROM now() - min(failed_at))::bigint AS oldest_age_seconds
FROM dead_letter
WHERE NOT resolved
GROUP BY component, error_class;

-- Data completeness per grid area per day: complete metering point-days and
-- received positions against expected ones.
CREATE VIEW data_completeness_grid_area_day AS
SELECT
    grid_area,
    local_date,
    (local_date::timestamp AT TIME ZONE 'Europe/Copenhagen') AS day,
    count(*) AS metering_points,
    count(*) FILTER (WHERE complete) AS complete_metering_points,
    round(count(*) FILTER (WHERE complete)::numeric / count(*), 4) AS completeness,
    sum(expected_positions) AS expected_positions,
    sum(received_positions) AS received_positions,
    round(sum(received_positions)::numeric / nullif(sum(expected_positions), 0), 4) AS positions_ratio
FROM daily_summary_day
GROUP BY grid_area, local_date;

-- Where each sink is per topic partition, and how long since it moved.
CREATE VIEW sink_progress AS
SELECT
    consumer,
    topic,
    partition,
    next_offset,
    updated_at,
    extract(epoch FROM now() - updated_at)::bigint AS seconds_since_update
FROM sink_offset;
