-- Chip cards in the 0200 batch (section 11; owner: switch/authorization with switch/emv;
-- after 0900, which creates card_chips).
--
-- The cryptogram is checked in Python before the batch (HSM); the batch applies the outcome
-- at its place in section 6's order (after 75 card blocked, before 55 PIN) and records a
-- passed ATC under the card's lock, atomically with the decision: of racing requests with one
-- ATC at most one passes (UPDATE ... WHERE atc_accepted < new), the others are 59.

-- Changing a card's chip data (not its accepted ATC) changes what the switch decided with:
-- bump the card's version (which notifies every node's cache, migration 0310).
CREATE OR REPLACE FUNCTION card_chips_bump_card() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.imk_ac IS NOT DISTINCT FROM OLD.imk_ac
       AND NEW.psn IS NOT DISTINCT FROM OLD.psn
       AND NOT (NEW.atc_accepted IS NULL AND OLD.atc_accepted IS NOT NULL) THEN
        RETURN NULL;  -- only the accepted ATC grew: nothing cached changed
    END IF;
    UPDATE cards SET version = version + 1, updated_at = now()
     WHERE card_id = CASE WHEN TG_OP = 'DELETE' THEN OLD.card_id ELSE NEW.card_id END;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS card_chips_bump_card ON card_chips;
CREATE TRIGGER card_chips_bump_card AFTER INSERT OR UPDATE OR DELETE ON card_chips
    FOR EACH ROW EXECUTE FUNCTION card_chips_bump_card();

-- cards_bump_version (0310) bumps only on its own columns; an explicit version change from
-- the trigger above must stand, so keep the larger of the two.
CREATE OR REPLACE FUNCTION cards_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.pin_verification IS DISTINCT FROM OLD.pin_verification
       OR NEW.limits IS DISTINCT FROM OLD.limits
       OR NEW.expiry IS DISTINCT FROM OLD.expiry
       OR NEW.account_id IS DISTINCT FROM OLD.account_id
       OR NEW.pan_hash IS DISTINCT FROM OLD.pan_hash THEN
        NEW.version := greatest(NEW.version, OLD.version + 1);
    END IF;
    RETURN NEW;
END $$;

-- Record a passed ATC; false when it is not greater than the highest accepted (a replay).
CREATE OR REPLACE FUNCTION auth_accept_atc(p_card bigint, p_atc integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE card_chips SET atc_accepted = p_atc, updated_at = now()
     WHERE card_id = p_card AND (atc_accepted IS NULL OR atc_accepted < p_atc);
    RETURN FOUND;
END $$;

