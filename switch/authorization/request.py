"""Step 1 of the pipeline: validate a financial message and read it into a typed request.

Anything the switch cannot act on is a format error (``30``, not recorded, spec 5.5): missing
key fields, a PAN that is not 12-19 digits, field 2 not matching the PAN of track 2, a bad
field 90 or 95. Fields only echoed (12, 13, 22, 42, 43) are not required: the spec lists them
but the switch needs none of them to decide.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ops.masking import masked_repr
from switch.authorization.outcomes import Decline, Outcome
from switch.authorization.transactions import Kind, parse_processing_code
from switch.protocol.errors import MessageFormatError
from switch.protocol.field48 import decode_tags

MESSAGE_CLASSES = {"0200": "0200", "0220": "0220", "0221": "0220", "0420": "0420", "0421": "0420"}
MAC_FIELDS = ("64", "128")

_DIGITS = re.compile(r"^[0-9]+$")
_PAN = re.compile(r"^[0-9]{12,19}$")
_HEX16 = re.compile(r"^[0-9A-F]{16}$")
_HEX32 = re.compile(r"^[0-9A-F]{32}$")
_TRACK2 = re.compile(r"^(?P<pan>[0-9]{12,19})[=D](?P<expiry>[0-9]{4})(?P<rest>[0-9]*)$")
_FIELD95 = re.compile(r"^(?P<actual>[0-9]{12})[0-9]{12}[CD][0-9]{8}[CD][0-9]{8}$")


@dataclass(frozen=True, slots=True)
class MessageKey:
    """Spec 5.5: (41, 11, 7, 32) scoped by message class."""

    message_class: str
    terminal_id: str
    stan: str
    transmission_dt: str
    acquirer_id: str


@dataclass(frozen=True, slots=True)
class OriginalData:
    """Field 90: the 0200 an advice refers to."""

    mti: str
    stan: str
    transmission_dt: str
    acquirer_id: str


@dataclass(frozen=True, slots=True)
class FinancialRequest:
    key: MessageKey
    pan: str
    presented_expiry: str | None
    processing_code: str
    amount_minor: int
    currency: str
    from_account: str | None
    to_account: str | None
    pin_block: str | None  # field 52 (format 0), or 48/PB (format 4, AES terminals)
    pin_block_format: int
    tags: Mapping[str, str]
    original: OriginalData | None
    actual_amount_minor: int | None  # field 95 of a partial reversal
    reversal_reason: str | None
    rrn: str | None = None  # field 37, kept for reports
    entry_mode: str | None = None  # field 22 (stand-in refuses key-entered PANs)
    # Track 2 after the expiry (service code + discretionary data: a Visa PVKI and PVV for a
    # network's stand-in PIN check). In memory only, never stored or logged (repr wipes it).
    track2_discretionary: str | None = None

    def __repr__(self) -> str:
        return masked_repr(self)

    @property
    def language(self) -> str | None:
        return self.tags.get("LG")


def _format_error(detail: str) -> Decline:
    return Decline(Outcome.FORMAT_ERROR, detail)


def _required(fields: Mapping[str, str], name: str, pattern: re.Pattern[str] = _DIGITS) -> str:
    value = fields.get(name)
    if value is None or not pattern.match(value):
        raise _format_error(f"field {name} missing or malformed")
    return value


def _numeric(fields: Mapping[str, str], name: str, length: int) -> str:
    value = _required(fields, name)
    if len(value) != length:
        raise _format_error(f"field {name} must have {length} digits")
    return value


def _track2_rest(fields: Mapping[str, str]) -> str | None:
    match = _TRACK2.match(fields.get("35", ""))
    return match["rest"] if match is not None else None


def _pan_and_expiry(fields: Mapping[str, str]) -> tuple[str, str | None]:
    pan_field = fields.get("2")
    track2 = fields.get("35")
    expiry = fields.get("14")
    if expiry is not None and not re.match(r"^[0-9]{4}$", expiry):
        raise _format_error("field 14 malformed")
    if track2 is not None:
        match = _TRACK2.match(track2)
        if match is None:
            raise _format_error("field 35 malformed")
        if pan_field is not None and pan_field != match["pan"]:
            raise _format_error("field 2 does not match the PAN of field 35")
        return match["pan"], match["expiry"]
    if pan_field is None or not _PAN.match(pan_field):
        raise _format_error("field 2 or 35 required")
    return pan_field, expiry


def _pin_block(fields: Mapping[str, str], tags: Mapping[str, str]) -> tuple[str | None, int]:
    """Field 52 (ISO 9564 format 0, 16 hex) or, for AES terminals, 48/PB (format 4, 32 hex)."""
    if "52" in fields:
        if not _HEX16.match(fields["52"]):
            raise _format_error("field 52 malformed")
        return fields["52"], 0
    if "PB" in tags:
        if not _HEX32.match(tags["PB"]):
            raise _format_error("48/PB malformed")
        return tags["PB"], 4
    return None, 0


def _acquirer(fields: Mapping[str, str]) -> str:
    """Field 32 zero-filled to 11 digits, the form field 90 carries it in (spec 2)."""
    value = _required(fields, "32")
    if len(value) > 11:
        raise _format_error("field 32 longer than 11 digits")
    return value.zfill(11)


def _original(fields: Mapping[str, str]) -> OriginalData:
    value = _required(fields, "90")
    if len(value) != 42:
        raise _format_error("field 90 must have 42 digits")
    return OriginalData(
        mti=value[0:4],
        stan=value[4:10],
        transmission_dt=value[10:20],
        acquirer_id=value[20:31],
    )


def _actual_amount(fields: Mapping[str, str]) -> int | None:
    value = fields.get("95")
    if value is None:
        return None
    match = _FIELD95.match(value)
    if match is None:
        raise _format_error("field 95 malformed")
    return int(match["actual"])


def _tags(fields: Mapping[str, str]) -> Mapping[str, str]:
    value = fields.get("48")
    if value is None:
        return {}
    try:
        return decode_tags(value)
    except MessageFormatError as exc:
        raise _format_error(f"field 48: {exc}") from exc


def parse_request(mti: str, fields: Mapping[str, str]) -> FinancialRequest:
    """Validate a 0200/0220/0221/0420/0421 and return the typed request (or raise ``30``)."""
    message_class = MESSAGE_CLASSES.get(mti)
    if message_class is None:
        raise _format_error(f"MTI {mti} is not a financial message")
    key = MessageKey(
        message_class=message_class,
        terminal_id=_required(fields, "41", re.compile(r"^.{1,8}$")).rstrip(),
        stan=_numeric(fields, "11", 6),
        transmission_dt=_numeric(fields, "7", 10),
        acquirer_id=_acquirer(fields),
    )
    pan, expiry = _pan_and_expiry(fields)
    tags = _tags(fields)
    pin_block, pin_block_format = _pin_block(fields, tags)
    for account_field in ("102", "103"):
        if account_field in fields and not fields[account_field].strip():
            raise _format_error(f"field {account_field} empty")
    is_advice = message_class != "0200"
    parsed = FinancialRequest(
        key=key,
        pan=pan,
        presented_expiry=expiry,
        processing_code=_numeric(fields, "3", 6),
        amount_minor=int(_numeric(fields, "4", 12)),
        currency=_numeric(fields, "49", 3),
        from_account=fields.get("102"),
        to_account=fields.get("103"),
        pin_block=pin_block,
        pin_block_format=pin_block_format,
        tags=tags,
        original=_original(fields) if is_advice else None,
        actual_amount_minor=_actual_amount(fields) if message_class == "0420" else None,
        reversal_reason=fields.get("39") if message_class == "0420" else None,
        rrn=fields.get("37"),
        entry_mode=fields.get("22"),
        track2_discretionary=_track2_rest(fields),
    )
    if not is_advice:
        _check_fields_for_type(parsed)
    return parsed


def _check_fields_for_type(request: FinancialRequest) -> None:
    """Fields a 0200 of a known type cannot do without (spec 3, 4, 5.2): ``30`` if absent."""
    code = parse_processing_code(request.processing_code)
    if code.kind is None or code.rule is None:
        return
    if code.rule.needs_pin and request.pin_block is None:
        raise _format_error("field 52 (or 48/PB) required")
    if code.kind in (Kind.PAYEE_INQUIRY, Kind.TRANSFER) and not request.to_account:
        raise _format_error("field 103 required")
    new_block = _HEX32 if request.pin_block_format == 4 else _HEX16
    if code.kind is Kind.PIN_CHANGE and not new_block.match(request.tags.get("NP", "")):
        raise _format_error("48/NP required, same format as the PIN block")


def fingerprint(request: FinancialRequest, pan_hash: str) -> str:
    """Spec 5.5 content of a key: PAN (2/35), 3, 4, 49, 102, 103. The PAN enters as its keyed
    hash so the stored fingerprint reveals nothing about it."""
    parts = (
        pan_hash,
        request.processing_code,
        str(request.amount_minor),
        request.currency,
        request.from_account or "",
        request.to_account or "",
    )
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
