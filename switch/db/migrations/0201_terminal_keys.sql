-- Terminal keys (spec 7): every key column holds an LMK handle (a TR-31 version D
-- key block under the LMK), never a clear key. tmk: terminal master key (K0);
-- tpk / tak: current working keys from the last key exchange (NULL until then).
CREATE TABLE IF NOT EXISTS terminal_keys (
    terminal_id  text PRIMARY KEY REFERENCES terminals (terminal_id) ON DELETE CASCADE,
    tmk          text NOT NULL CHECK (tmk LIKE 'D%'),
    tpk          text CHECK (tpk IS NULL OR tpk LIKE 'D%'),
    tak          text CHECK (tak IS NULL OR tak LIKE 'D%'),
    key_type     text NOT NULL CHECK (key_type IN ('tdes', 'aes')),
    tmk_kcv      text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
