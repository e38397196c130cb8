-- The API's audit log (issue 15, docs/api.md): one row per state-changing
-- call, written in the same transaction as the change it records, so a change
-- without its row (or a row without its change) cannot exist.
--
-- Append-only, enforced by the database: UPDATE, DELETE and TRUNCATE raise.
CREATE TABLE api_audit (
    audit_id bigserial PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL CHECK (actor <> ''),
    roles text[] NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    reason text NOT NULL CHECK (btrim(reason) <> ''),
    request_id text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX api_audit_target ON api_audit (target, recorded_at);

CREATE FUNCTION afregning_refuse_change_of_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER api_audit_append_only BEFORE UPDATE OR DELETE ON api_audit
    FOR EACH ROW EXECUTE FUNCTION afregning_refuse_change_of_log();
CREATE TRIGGER api_audit_no_truncate BEFORE TRUNCATE ON api_audit
    FOR EACH STATEMENT EXECUTE FUNCTION afregning_refuse_change_of_log();
