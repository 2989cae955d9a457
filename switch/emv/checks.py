"""The chip check of a 0200 (ATM_HOST_SPEC section 11): one decision, no state changed.

``check_chip(fields, chip, hsm)`` reads the request's fields, the card's chip data on file
and asks the HSM to verify the ARQC; it returns one small frozen result and changes
nothing. Recording a passed ATC (atomically, so one ATC passes once) is the caller's job,
inside the authorization batch: see ``switch/emv/store.py`` and docs/emv.md.

Where it sits in section 6's order: the format part (``30``) belongs to the format stage
(``chip_format_error``, first of all checks); the rest after ``75`` card already blocked
and before ``55`` wrong PIN, so forged or replayed chip data never has a PIN evaluated.
Within it, section 11's order:

1. a chip 0200 (22 = ``05x``) lacking 23 or 55, malformed 55, a missing tag or a tag of
   another length: ``FormatError`` (``30``);
2. a chip card not read from its chip (22 not ``05x``): ``Fallback`` (``05``), no fallback;
   a card without chip data read by stripe: ``NotChip`` (nothing to check; 23/55 ignored);
3. ``Fraud`` (``59``), first failing of: the card is not a chip card; 23 is not ``0`` + the
   PSN on file; 9F27 is not an ARQC; 9C is not field 3 positions 1-2; 9F02 is not field 4;
   5F2A is not ``0`` + field 49; 9F26 is not the ARQC (HSM); the ATC is not greater than the
   highest accepted (replay);
4. otherwise ``Passed(atc, arqc)``.

9F03 and 9F1A are not compared with their table values (section 11 lists neither among
the ``59`` causes); both are inside the ARQC, so a terminal cannot change them unseen.
HSM failures other than ``CryptogramFailed`` (an unreadable key handle on file) propagate:
they are a malfunction (``96``), not fraud.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from switch.emv.icc_data import ChipFormatError, IccData, parse_icc_data, response_field55
from switch.hsm.errors import CryptogramFailed
from switch.hsm.protocol import Hsm

CHIP_ENTRY_MODE: Final = "05"  # field 22 positions 1-2: read from the chip
PSN_FIELD_CHARS: Final = 3


@dataclass(frozen=True, slots=True)
class ChipOnFile:
    """A chip card's data on file (``card_chips``); ``repr`` hides the key handle."""

    imk_ac: str = field(repr=False)
    psn: str
    atc_accepted: int | None


@dataclass(frozen=True, slots=True)
class NotChip:
    """Not a chip card and not read from a chip: section 11 does not apply."""

    response_code: Literal[None] = None


@dataclass(frozen=True, slots=True)
class FormatError:
    reason: str
    response_code: Literal["30"] = "30"


@dataclass(frozen=True, slots=True)
class Fallback:
    """A chip card read by its magnetic stripe: declined, no fallback (48/TX: insert card)."""

    response_code: Literal["05"] = "05"


@dataclass(frozen=True, slots=True)
class Fraud:
    reason: str
    response_code: Literal["59"] = "59"


@dataclass(frozen=True, slots=True)
class CryptogramInput:
    """What the HSM needs to answer with an ARPC later; ``repr`` hides all of it."""

    imk_ac: str
    pan: str
    psn: str
    atc: int
    data: bytes
    arqc: bytes

    def __repr__(self) -> str:
        return "CryptogramInput(...)"


@dataclass(frozen=True, slots=True)
class Passed:
    """The cryptogram verified and the ATC is new: record ``atc`` as accepted."""

    atc: int
    arqc: bytes
    cryptogram: CryptogramInput = field(repr=False)
    response_code: Literal[None] = None


ChipResult = NotChip | FormatError | Fallback | Fraud | Passed


def is_chip_read(fields: Mapping[str, str]) -> bool:
    return fields.get("22", "")[:2] == CHIP_ENTRY_MODE


def _pan(fields: Mapping[str, str]) -> str:
    """All digits of field 2, else of 35 before its separator (section 11 step 1)."""
    pan = fields.get("2")
    if pan is not None:
        return pan
    track2 = fields.get("35", "")
    for separator in ("=", "D"):
        if separator in track2:
            return track2.split(separator, 1)[0]
    return track2


def _parse(fields: Mapping[str, str]) -> IccData:
    psn_field = fields.get("23")
    if psn_field is None:
        raise ChipFormatError("a chip 0200 lacks field 23")
    if len(psn_field) != PSN_FIELD_CHARS or not psn_field.isdigit():
        raise ChipFormatError("field 23 is n3")
    field55 = fields.get("55")
    if field55 is None:
        raise ChipFormatError("a chip 0200 lacks field 55")
    return parse_icc_data(field55)


def chip_format_error(fields: Mapping[str, str]) -> FormatError | None:
    """Section 11's format rules for the ``30`` stage; None for a valid or non-chip 0200."""
    if not is_chip_read(fields):
        return None
    try:
        _parse(fields)
    except ChipFormatError as exc:
        return FormatError(exc.reason)
    return None


def _table_mismatch(fields: Mapping[str, str], icc: IccData, chip: ChipOnFile) -> str | None:
    """The first 59 cause found before any cryptography, or None."""
    if fields.get("23") != "0" + chip.psn:
        return "field 23 is not the PAN sequence number on file"
    if not icc.is_arqc:
        return "9F27 is not an ARQC"
    if icc.hex_of("9C") != fields.get("3", "")[:2]:
        return "9C is not the transaction type of field 3"
    if icc.hex_of("9F02") != fields.get("4"):
        return "9F02 is not the amount of field 4"
    if icc.hex_of("5F2A") != "0" + fields.get("49", ""):
        return "5F2A is not the currency of field 49"
    return None


async def check_chip(fields: Mapping[str, str], chip: ChipOnFile | None, hsm: Hsm) -> ChipResult:
    """Section 11's checks of one 0200, in order (module docstring); changes nothing."""
    if not is_chip_read(fields):
        return NotChip() if chip is None else Fallback()
    try:
        icc = _parse(fields)
    except ChipFormatError as exc:
        return FormatError(exc.reason)
    if chip is None:
        return Fraud("chip data for a card that is not a chip card")
    mismatch = _table_mismatch(fields, icc, chip)
    if mismatch is not None:
        return Fraud(mismatch)
    cryptogram = CryptogramInput(
        chip.imk_ac, _pan(fields), chip.psn, icc.atc, icc.cryptogram_data(), icc.arqc
    )
    try:
        await hsm.verify_arqc(
            imk_ac=cryptogram.imk_ac,
            pan=cryptogram.pan,
            psn=cryptogram.psn,
            atc=cryptogram.atc,
            data=cryptogram.data,
            arqc=cryptogram.arqc,
        )
    except CryptogramFailed:
        return Fraud("9F26 is not the card's ARQC")
    if chip.atc_accepted is not None and icc.atc <= chip.atc_accepted:
        return Fraud("ATC not greater than the highest accepted (replay)")
    return Passed(icc.atc, icc.arqc, cryptogram)


async def arpc_field55(hsm: Hsm, result: ChipResult, response_code: str) -> str | None:
    """The 0210's field 55 (tag 91 = ARPC || ARC of ``response_code``) exactly when passed.

    Called once the answer's field 39 is known, whatever it is (a decline after a passed
    chip check still carries an ARPC over its own ARC); None for every other result.
    """
    if not isinstance(result, Passed):
        return None
    c = result.cryptogram
    arpc = await hsm.generate_arpc(
        imk_ac=c.imk_ac,
        pan=c.pan,
        psn=c.psn,
        atc=c.atc,
        data=c.data,
        arqc=c.arqc,
        response_code=response_code,
    )
    return response_field55(arpc, response_code)


def cryptogram_of(fields: Mapping[str, str], chip: ChipOnFile) -> Passed:
    """The passed result of a request whose chip check passed before (a repeat of it, spec
    5.5: the original 0210 again, its ARPC recomputed): parsed, not checked again."""
    icc = _parse(fields)
    cryptogram = CryptogramInput(
        chip.imk_ac, _pan(fields), chip.psn, icc.atc, icc.cryptogram_data(), icc.arqc
    )
    return Passed(icc.atc, icc.arqc, cryptogram)
