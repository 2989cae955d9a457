"""Stand-in (STIP) policy: what the switch may approve for a card network that cannot be
asked (issue 11 item 2). A pure decision; the acquirer supplies the facts and the usage.

Stand-in approves only a withdrawal that passes every rule below; anything else is ``91``:

* at or below the network's floor (``stand_in_floor_minor``; none configured: never);
* a PIN the switch has verified: with the network's PIN verification key configured
  (``stand_in_pvk``) the acquirer checks the PIN against the Visa PVV of track 2 first (a
  wrong PIN is ``55``); without it a PIN-bearing withdrawal is declined in stand-in (it is
  never approved unverified);
* an expiry date that is present and not past (the UTC month of the request);
* not key-entered (POS entry mode 01): only card-read PANs;
* the card's stand-in approvals today (UTC) stay within ``stand_in_daily_count_max`` and
  ``stand_in_daily_max_minor`` (default: one approval, the floor amount).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from switch.authorization.transactions import Kind, parse_processing_code
from switch.hsm import Hsm
from switch.hsm.errors import HsmError, PinVerificationFailed
from switch.hsm.verification_data import PinVerificationData

KEY_ENTERED_MODES: Final = frozenset({"01"})  # ISO 8583 field 22 positions 1-2: manual


@dataclass(frozen=True, slots=True)
class StandInLimits:
    floor_minor: int | None = None
    daily_max_minor: int | None = None  # None: the floor
    daily_count_max: int = 1


@dataclass(frozen=True, slots=True)
class StandInRequest:
    processing_code: str
    amount_minor: int
    expiry: str | None  # YYMM
    pin_bearing: bool  # a PIN the acquirer could not verify (none verified counts as bearing)
    entry_mode: str | None  # field 22 positions 1-2 when known


@dataclass(frozen=True, slots=True)
class StandInUsage:
    """The card's stand-in approvals so far today."""

    count: int = 0
    amount_minor: int = 0


def refusal(
    limits: StandInLimits, request: StandInRequest, usage: StandInUsage, today: dt.date
) -> str | None:
    """Why stand-in must not approve (a short reason for the log), or None to approve."""
    floor = limits.floor_minor
    if floor is None:
        return "no stand-in configured"
    if parse_processing_code(request.processing_code).kind is not Kind.WITHDRAWAL:
        return "not a withdrawal"
    if request.amount_minor > floor:
        return "above the floor"
    if request.pin_bearing:
        return "PIN cannot be verified in stand-in"
    if request.entry_mode is not None and request.entry_mode[:2] in KEY_ENTERED_MODES:
        return "key-entered PAN"
    if not _expiry_valid(request.expiry, today):
        return "expired or no expiry"
    daily_max = floor if limits.daily_max_minor is None else limits.daily_max_minor
    if usage.count + 1 > limits.daily_count_max:
        return "daily stand-in count reached"
    if usage.amount_minor + request.amount_minor > daily_max:
        return "daily stand-in amount reached"
    return None


def _expiry_valid(expiry: str | None, today: dt.date) -> bool:
    if expiry is None or len(expiry) != 4 or not expiry.isdigit():
        return False
    month = int(expiry[2:])
    if not 1 <= month <= 12:
        return False
    return (2000 + int(expiry[:2]), month) >= (today.year, today.month)


def pvv_of(discretionary: str | None) -> tuple[str, str] | None:
    """(PVKI, PVV) from track 2 after the expiry: service code (3), PVKI (1), PVV (4).

    PVKI 0 means the card carries no PVV (Visa's convention: key indexes are 1-6)."""
    if discretionary is None or len(discretionary) < 8 or not discretionary[:8].isdigit():
        return None
    if not "1" <= discretionary[3] <= "6":
        return None
    return discretionary[3], discretionary[4:8]


async def verify_pin(
    hsm: Hsm, *, zpk: str | None, pvk: str | None, pan: str, pin_block: str | None,
    pin_block_format: int, pvv: tuple[str, str] | None,
) -> str:
    """``verified`` / ``wrong`` with the network's PVK and the card's PVV, else ``unverified``.

    The PIN block is the one translated to the network's zone PIN key; it is checked in the
    HSM against the Visa PVV (PVKI + PVV) of track 2's discretionary data.
    """
    if pin_block is None or pvk is None or zpk is None or pvv is None:
        return "unverified"
    pvki, value = pvv
    try:
        await hsm.verify_pin(
            tpk=zpk, pin_block=pin_block, pan=pan,
            verification=PinVerificationData("visa_pvv", pvk, value, pvki),
            pin_block_format=pin_block_format,
        )
    except PinVerificationFailed:
        return "wrong"
    except HsmError:
        return "unverified"  # a key that cannot do this: never approve unverified
    return "verified"
