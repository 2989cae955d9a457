"""The one masking function every log line goes through (PCI: spec-independent rules).

``mask_fields`` decides per field from the dialect's ``mask`` property
(:data:`switch.protocol.dialect.SPEC`), so masking follows a field wherever a
network puts it. It fails closed: a field the dialect does not know, or a value
that cannot be parsed, is wiped, never printed.

* PAN (field 2): first 6 + last 4, the rest ``*``.
* Track 2 (35): nothing but the masked PAN.
* PIN block (52), ICC data (55), MACs (64, 128), expiry (14): wiped.
* Field 48: tags NP, PB, KP, KM wiped; unparseable -> the whole field wiped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Final

from switch.protocol.dialect import SPEC
from switch.protocol.errors import MessageFormatError
from switch.protocol.field48 import SECRET_TAGS, decode_tags

WIPED: Final = "[wiped]"
PAN_DIGITS_MIN: Final = 12  # shorter than this, 6 + 4 would show almost everything
PAN_DIGITS_MAX: Final = 19


def mask_pan(pan: str) -> str:
    """``6225880123456789`` -> ``622588******6789``; anything not a PAN -> wiped."""
    if not (pan.isdigit() and pan.isascii() and PAN_DIGITS_MIN <= len(pan) <= PAN_DIGITS_MAX):
        return WIPED
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def mask_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """A copy of message fields that is safe to log."""
    return {key: _mask_one(key, value) for key, value in fields.items()}


def _mask_one(key: str, value: object) -> str:
    if not isinstance(value, str):
        return WIPED
    rule = SPEC.get(key, {}).get("mask", "wipe")
    if rule == "clear":
        return value
    if rule == "pan":
        return mask_pan(value)
    if rule == "track2":
        return _mask_track2(value)
    if rule == "tags":
        return _mask_tags(value)
    return WIPED


def _mask_track2(track2: str) -> str:
    for separator in ("=", "D"):
        if separator in track2:
            return mask_pan(track2.split(separator, 1)[0])
    return WIPED


def _mask_tags(value: str) -> str:
    try:
        tags = decode_tags(value)
    except MessageFormatError:
        return WIPED
    shown = [f"{tag}={WIPED if tag in SECRET_TAGS else element}" for tag, element in tags.items()]
    return ";".join(shown)


# --- free text and object reprs (issue 11 item 5) ------------------------------------------

# A card number in free text: 13-19 digits, the first not 0 (zero-padded n12 amounts and
# the like are not PANs), not part of a longer number. Test PANs need not pass Luhn, so
# this masks any such number: showing fewer digits of a non-PAN costs nothing.
_PAN_IN_TEXT: Final = re.compile(r"(?<![0-9])([1-9][0-9]{12,18})(?![0-9])")
# Track 2 in free text: PAN, separator, then expiry/service code/discretionary data.
_TRACK2_IN_TEXT: Final = re.compile(r"(?<![0-9])([0-9]{12,19})[=D][0-9]{4,}[0-9A-F]*")
# A PIN block or key written next to its name (field 52, 48/PB/NP/KP/KM, pin_block=...).
_SECRET_HEX_IN_TEXT: Final = re.compile(
    r"""(?ix)
    ( ['"]?52['"]?\s*[:=]\s*['"]?
    | \b(?:pin_?block|new_?pin_?block|clear_?key|tmk|tpk|tak|zpk|pvk|kek)['"]?\s*[:=]\s*['"]?
    | \b(?:PB|NP)[0-9]{3}
    )
    [0-9A-F]{16,64}
    """
)


def scrub_text(text: str) -> str:
    """Free text (a log message, an exception, a database error's DETAIL) made safe: track 2
    and card numbers masked (6 + 4), PIN blocks and keys written by name wiped."""
    text = _TRACK2_IN_TEXT.sub(lambda m: mask_pan(m.group(1)), text)
    text = _PAN_IN_TEXT.sub(lambda m: mask_pan(m.group(1)), text)
    return _SECRET_HEX_IN_TEXT.sub(lambda m: m.group(1) + WIPED, text)


# Attribute names whose values are never shown by masked_repr.
_WIPED_NAMES: Final = re.compile(
    r"(?i)(pin|key|tmk|tpk|tak|zpk|pvk|kek|cvv|cvc|secret|password|component|track|icc|mac)"
)


def mask_attribute(name: str, value: object) -> str:
    """How ``masked_repr`` shows one attribute: PANs 6+4, secrets wiped, the rest as repr."""
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    lowered = name.lower()
    if lowered in ("pan", "card_number", "primary_account_number") or lowered.endswith("_pan"):
        return repr(mask_pan(str(value)))
    if "track" in lowered:
        return repr(_mask_track2(str(value)))
    if _WIPED_NAMES.search(lowered):
        return repr(WIPED)
    if isinstance(value, Mapping):
        return repr(mask_fields({str(k): v for k, v in value.items()}))
    return scrub_text(repr(value))


def masked_repr(self: object) -> str:
    """A ``__repr__`` for dataclasses that carry card data: ``__repr__ = masked_repr``."""
    names = [f.name for f in dataclasses.fields(self)] if dataclasses.is_dataclass(self) else []
    shown = ", ".join(f"{name}={mask_attribute(name, getattr(self, name))}" for name in names)
    return f"{type(self).__name__}({shown})"
