"""The ``card_chips`` table (migration 0900): a card's chip data and its highest accepted ATC.

This module owns the table. Fixtures load a card's ``emv`` object here (IMK-AC imported into
the HSM as an ``E0`` handle, PSN, accepted ATC cleared); the authorization path reads
``chip_on_file`` and, for a passed chip check, records the ATC with
``RECORD_ACCEPTED_ATC_SQL`` inside its own transaction. That statement is the replay rule
made atomic: it updates only when the new ATC is greater than the one on file, so of any
number of racing requests with one ATC at most one gets its row back; a request that gets
nothing back is a replay (``59``) even though its check passed a moment earlier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from switch.db.runtime import Database
from switch.emv.checks import ChipOnFile
from switch.hsm.software import SoftwareHsm

imk_ac_hex_chars: Final = 32  # double-length TDES (section 11)
psn_digits: Final = 2
_HEX: Final = frozenset("0123456789abcdefABCDEF")

# $1 card_id, $2 the ATC that passed. Returns the row only when the ATC is new and greater.
RECORD_ACCEPTED_ATC_SQL: Final = (
    "UPDATE card_chips SET atc_accepted = $2, updated_at = now()"
    " WHERE card_id = $1 AND (atc_accepted IS NULL OR atc_accepted < $2)"
    " RETURNING atc_accepted"
)
CHIP_ON_FILE_SQL: Final = "SELECT imk_ac, psn, atc_accepted FROM card_chips WHERE card_id = $1"


class ChipDataError(ValueError):
    """A fixture's ``emv`` object is not what section 9/11 describe."""


def parse_emv_fixture(value: Any) -> tuple[str, str]:
    """``{"imk_ac": 32 hex, "psn": 2 digits}`` -> (imk_ac, psn); other keys are ignored."""
    if not isinstance(value, Mapping):
        raise ChipDataError("emv must be an object with imk_ac and psn")
    imk_ac = value.get("imk_ac")
    if not isinstance(imk_ac, str) or len(imk_ac) != imk_ac_hex_chars or set(imk_ac) - _HEX:
        raise ChipDataError("emv.imk_ac must be 32 hexadecimal characters (a TDES key)")
    psn = value.get("psn")
    if not isinstance(psn, str) or len(psn) != psn_digits or not (psn.isascii() and psn.isdigit()):
        raise ChipDataError('emv.psn must be 2 digits, as a string (e.g. "01")')
    return imk_ac.upper(), psn


async def load_card_chip(
    db: Database, hsm: SoftwareHsm, card_id: int, emv: tuple[str, str] | None
) -> None:
    """Bring a card's chip row to a fixture's state; the accepted ATC is always cleared."""
    if emv is None:
        await db.execute("DELETE FROM card_chips WHERE card_id = $1", card_id)
        return
    imk_hex, psn = emv
    handle = await hsm.import_clear_key_test_mode(imk_hex, usage="E0", exportable=False)
    await db.execute(
        "INSERT INTO card_chips (card_id, imk_ac, psn, atc_accepted) VALUES ($1, $2, $3, NULL)"
        " ON CONFLICT (card_id) DO UPDATE SET imk_ac = excluded.imk_ac, psn = excluded.psn,"
        " atc_accepted = NULL, updated_at = now()",
        card_id,
        handle,
        psn,
    )


async def chip_on_file(db: Database, card_id: int) -> ChipOnFile | None:
    """The card's chip data, or None for a card that is not a chip card."""
    row = await db.fetchrow(CHIP_ON_FILE_SQL, card_id)
    if row is None:
        return None
    return ChipOnFile(imk_ac=row["imk_ac"], psn=row["psn"], atc_accepted=row["atc_accepted"])


async def record_accepted_atc(db: Database, card_id: int, atc: int) -> bool:
    """Record a passed ATC on its own (outside a batch); False when it is not new (replay)."""
    return await db.fetchval(RECORD_ACCEPTED_ATC_SQL, card_id, atc) is not None
