-- Terminal key versions (issue 19; owner: switch/authorization/caches.py, KeyBook).
-- Every change of a terminal's keys (key exchange, TMK load or rotation, fixtures) takes a new
-- key_version from one sequence (so it only grows, even across a delete and re-insert): a
-- node keeps only the newest keys it has read, and a slow read that returns after a newer one
-- (e.g. after the re-read under a sign-on) can never put older keys back.
CREATE SEQUENCE IF NOT EXISTS terminal_key_versions;

ALTER TABLE terminal_keys
    ADD COLUMN IF NOT EXISTS key_version bigint NOT NULL DEFAULT nextval('terminal_key_versions');

CREATE OR REPLACE FUNCTION terminal_keys_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.tmk, NEW.tpk, NEW.tak, NEW.key_type)
            IS DISTINCT FROM (OLD.tmk, OLD.tpk, OLD.tak, OLD.key_type) THEN
        NEW.key_version := nextval('terminal_key_versions');
    ELSE
        NEW.key_version := OLD.key_version;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS terminal_keys_version ON terminal_keys;
CREATE TRIGGER terminal_keys_version BEFORE UPDATE ON terminal_keys
    FOR EACH ROW EXECUTE FUNCTION terminal_keys_version();
