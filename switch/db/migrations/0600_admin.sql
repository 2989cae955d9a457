-- Back office (switch/admin/): staff users, their sessions, the admin audit trail and
-- dual-control approvals. Owned by switch/admin/ only (one module per table, see docs/admin.md).

CREATE TABLE IF NOT EXISTS admin_users (
    username        text PRIMARY KEY CHECK (username ~ '^[a-z][a-z0-9_.-]{1,31}$'),
    role            text NOT NULL
                    CHECK (role IN ('operator', 'card_services', 'auditor', 'security_officer',
                                    'admin')),
    password_hash   text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    disabled        boolean NOT NULL DEFAULT false,
    failed_logins   integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A session token is shown once; only its SHA-256 is stored, so a database reader cannot
-- impersonate anyone. The console's CSRF token is stored the same way.
CREATE TABLE IF NOT EXISTS admin_sessions (
    token_sha256    text PRIMARY KEY CHECK (length(token_sha256) = 64),
    username        text NOT NULL REFERENCES admin_users (username) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('api', 'console')),
    csrf_sha256     text,
    address         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz
);
CREATE INDEX IF NOT EXISTS admin_sessions_user_idx ON admin_sessions (username);

-- Who changed what through the back office, when, from which address, before and after.
CREATE TABLE IF NOT EXISTS admin_audit (
    audit_id    bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    role        text NOT NULL,
    address     text,
    action      text NOT NULL,
    subject     text NOT NULL,
    before      jsonb,
    after       jsonb
);
CREATE INDEX IF NOT EXISTS admin_audit_at_idx ON admin_audit (at);
CREATE INDEX IF NOT EXISTS admin_audit_subject_idx ON admin_audit (subject, at);

-- Dual control: an operation PCI wants two people for is requested by one and carried out
-- when a second, different person of an allowed role approves it before it expires.
CREATE TABLE IF NOT EXISTS admin_approvals (
    approval_id     bigserial PRIMARY KEY,
    operation       text NOT NULL,
    subject         text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}'::jsonb,
    requested_by    text NOT NULL REFERENCES admin_users (username),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'executed', 'rejected', 'failed')),
    decided_by      text REFERENCES admin_users (username),
    decided_at      timestamptz,
    result          jsonb,
    CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
CREATE INDEX IF NOT EXISTS admin_approvals_pending_idx ON admin_approvals (requested_at)
    WHERE state = 'pending';
