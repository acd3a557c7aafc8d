-- The audit trails are append-only for everyone, the application's own account included: a
-- record once written is never changed or removed (only a superuser dropping the trigger
-- could, and that is itself visible in the schema).

CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER incident_audit_append_only
    BEFORE UPDATE OR DELETE ON incident_audit
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER incident_audit_no_truncate
    BEFORE TRUNCATE ON incident_audit
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER access_audit_append_only
    BEFORE UPDATE OR DELETE ON access_audit
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER access_audit_no_truncate
    BEFORE TRUNCATE ON access_audit
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change();
