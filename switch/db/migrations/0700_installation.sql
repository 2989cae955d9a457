-- The installation's mode (spec 9): 'production' or 'test'. One row at most, written by the
-- first `atm-switch db init` (`--mode test` for a test installation) and never changed by the
-- CLI afterwards: `fixtures load` (clear PINs and keys) works only on a test installation.
CREATE TABLE installation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mode       text NOT NULL CHECK (mode IN ('production', 'test')),
    created_at timestamptz NOT NULL DEFAULT now()
);
