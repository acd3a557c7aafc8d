-- Accounts, the API tokens an admin issues, and the access audit (logins, refusals, changes).

CREATE TABLE account (
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    display_name text NOT NULL DEFAULT '',
    role text NOT NULL CHECK (role IN ('admin', 'commander', 'dispatcher', 'officer', 'auditor')),
    scope text,  -- an area id of the tree; NULL is the whole center
    officer text,  -- for officer accounts: the roster officer id
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    CHECK (role <> 'officer' OR officer IS NOT NULL)
);

CREATE TABLE api_token (
    id text PRIMARY KEY,  -- the public handle shown in lists and used to revoke
    digest bytea NOT NULL UNIQUE,  -- sha256 of the secret; the secret itself is never stored
    account text NOT NULL REFERENCES account (name),
    label text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);

CREATE TABLE access_audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    account text,  -- NULL for a login attempt naming no known account
    role text,
    address text NOT NULL DEFAULT '',
    action text NOT NULL,
    target text NOT NULL DEFAULT '',
    detail text NOT NULL DEFAULT ''
);
CREATE INDEX access_audit_by_account ON access_audit (account, at);
CREATE INDEX access_audit_by_time ON access_audit (at);
CREATE INDEX access_audit_by_target ON access_audit (target, at);
