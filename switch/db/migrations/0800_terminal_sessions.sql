-- Terminal sessions across switch nodes (issue 14; owner: switch/cluster_sessions.py).
-- One row per terminal: which node and connection hold its session, and a generation that
-- grows with every sign-on anywhere. A node that holds an older generation closes its
-- connection when told (NOTIFY below) or when it finds out after a listener gap.
CREATE TABLE IF NOT EXISTS terminal_sessions (
    terminal_id    text PRIMARY KEY,
    node_id        text NOT NULL,
    connection_id  bigint NOT NULL,
    generation     bigint NOT NULL DEFAULT 1 CHECK (generation > 0),
    signed_on_at   timestamptz NOT NULL DEFAULT now()
);

-- Every sign-on is announced on channel atm_terminal_session (delivered at commit).
CREATE OR REPLACE FUNCTION terminal_sessions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('atm_terminal_session', json_build_object(
        'terminal_id', NEW.terminal_id, 'node_id', NEW.node_id,
        'generation', NEW.generation)::text);
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS terminal_sessions_notify ON terminal_sessions;
CREATE TRIGGER terminal_sessions_notify AFTER INSERT OR UPDATE ON terminal_sessions
    FOR EACH ROW EXECUTE FUNCTION terminal_sessions_notify();
