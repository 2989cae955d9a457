-- Terminal registry (spec 5.1): a terminal must be registered and enabled to sign on.
CREATE TABLE IF NOT EXISTS terminals (
    terminal_id  text PRIMARY KEY CHECK (length(terminal_id) BETWEEN 1 AND 8),
    status       text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    key_type     text NOT NULL DEFAULT 'tdes' CHECK (key_type IN ('tdes', 'aes')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
