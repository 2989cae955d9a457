-- Chip cards (ATM_HOST_SPEC section 11; owner: switch/emv/store.py). A card with a row here
-- is a chip card. imk_ac: the issuer master key for application cryptograms as an LMK handle
-- (TR-31 version D block, usage E0, never exportable), never a clear key. psn: the PAN
-- sequence number (tag 5F34). atc_accepted: the highest ATC whose cryptogram passed, NULL
-- until the first pass; it only grows (one ATC passes once), and loading the card clears it.
CREATE TABLE IF NOT EXISTS card_chips (
    card_id       bigint PRIMARY KEY REFERENCES cards (card_id) ON DELETE CASCADE,
    imk_ac        text NOT NULL CHECK (imk_ac LIKE 'D%'),
    psn           char(2) NOT NULL CHECK (psn ~ '^[0-9]{2}$'),
    atc_accepted  integer CHECK (atc_accepted BETWEEN 0 AND 65535),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
