-- Lookups by metering point must never scan a whole day or month.
--
-- The single-column indexes daily_summary (local_date) and settlement_version
-- (month_start) were smaller than the primary keys, so plans made while a table
-- was empty or its statistics stale chose them for lookups that also name the
-- GSRN: the foreign-key check of every settlement_line (a plan cached per
-- session) and the sink's newer-version check on daily_summary then read every
-- row of the month or day. In the day load test (issue 13, 5,000 metering
-- points on one day) that was 110 M and 309 M index rows fetched, 66 CPU-s of
-- PostgreSQL and single statements of 10-12 s (auto_explain). The replacements
-- keep the date or month first for dashboards and lead on to the GSRN, so any
-- plan that picks them narrows to one metering point.
DROP INDEX IF EXISTS daily_summary_local_date;
CREATE INDEX IF NOT EXISTS daily_summary_local_date_gsrn ON daily_summary (local_date, gsrn);

DROP INDEX IF EXISTS settlement_version_month;
CREATE INDEX IF NOT EXISTS settlement_version_month_gsrn ON settlement_version (month_start, gsrn, version);
