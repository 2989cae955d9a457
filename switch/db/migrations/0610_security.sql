-- Issue 18: security of people and of cards.

-- A card keeps the worst report it ever had (lost < stolen < closed), whatever status
-- operation follows: while it is set the card can be neither active nor blocked, and only a
-- dual-controlled reactivation clears it (never for a closed card). The state machine itself
-- is switch/authorization/card_status.py; this trigger is the second line, so that no code
-- path (re-issuing a PAN, a fixture, a hand-written UPDATE) can bring such a card back.
ALTER TABLE cards ADD COLUMN IF NOT EXISTS reported text
    CHECK (reported IN ('lost', 'stolen', 'closed'));
UPDATE cards SET reported = status WHERE status IN ('lost', 'stolen', 'closed')
    AND reported IS NULL;

CREATE OR REPLACE FUNCTION cards_keep_reported() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rank_old integer := CASE OLD.reported WHEN 'lost' THEN 1 WHEN 'stolen' THEN 2
                                          WHEN 'closed' THEN 3 ELSE 0 END;
    rank_new integer := CASE NEW.status WHEN 'lost' THEN 1 WHEN 'stolen' THEN 2
                                        WHEN 'closed' THEN 3 ELSE 0 END;
BEGIN
    IF OLD.reported = 'closed' AND (NEW.status <> 'closed' OR NEW.reported IS DISTINCT FROM 'closed') THEN
        RAISE EXCEPTION 'card %: a closed card stays closed', OLD.card_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.reported IS NULL AND OLD.reported IS NOT NULL THEN
        -- a reactivation (dual control, switch/admin/handlers/cards.py) clears the report
        IF NEW.status <> 'active' THEN
            RAISE EXCEPTION 'card %: a report is cleared only by reactivating', OLD.card_id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.reported IS DISTINCT FROM OLD.reported THEN
        -- only this trigger records a report (from the status); nobody writes it by hand
        RAISE EXCEPTION 'card %: reported is kept by the database, not written', OLD.card_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF rank_new > rank_old THEN
        NEW.reported := NEW.status;
    ELSIF rank_new < rank_old THEN  -- back to active or blocked, or stolen -> lost
        RAISE EXCEPTION 'card %: reported % (only a second person reactivates it)',
            OLD.card_id, OLD.reported USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS cards_keep_reported ON cards;
-- WHEN keeps the trigger off the PIN-counter updates of the authorization path.
CREATE TRIGGER cards_keep_reported BEFORE UPDATE ON cards FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.reported IS DISTINCT FROM NEW.reported)
    EXECUTE FUNCTION cards_keep_reported();

CREATE OR REPLACE FUNCTION cards_report_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('lost', 'stolen', 'closed') THEN
        NEW.reported := NEW.status;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS cards_report_on_insert ON cards;
CREATE TRIGGER cards_report_on_insert BEFORE INSERT ON cards FOR EACH ROW
    WHEN (NEW.status IN ('lost', 'stolen', 'closed'))
    EXECUTE FUNCTION cards_report_on_insert();

-- Dual control over people: who created the account and who last changed its role (they know
-- or chose what it can do), and whether a second person approved it. An account of a role
-- that can approve anything is unusable while approval_pending; an approver is refused when
-- either side's account lists the other in vouched_by (switch/admin/people.py).
ALTER TABLE admin_users ADD COLUMN IF NOT EXISTS vouched_by text[] NOT NULL DEFAULT '{}';
ALTER TABLE admin_users ADD COLUMN IF NOT EXISTS approval_pending boolean NOT NULL DEFAULT false;
ALTER TABLE admin_users ADD COLUMN IF NOT EXISTS approved_by text;
