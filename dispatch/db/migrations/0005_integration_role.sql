-- Accounts of other systems (the 12345/8890 hotline) that hand work orders over.

ALTER TABLE account DROP CONSTRAINT account_role_check;
ALTER TABLE account ADD CONSTRAINT account_role_check
    CHECK (role IN ('admin', 'commander', 'dispatcher', 'officer', 'auditor', 'integration'));
