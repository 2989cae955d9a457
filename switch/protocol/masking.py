"""How the dialect's values may appear in a log (PCI): the masking rules of the wire format.

They live with the dialect because they depend on it: which field holds the PAN or track 2
(each field spec's ``mask`` property in :data:`switch.protocol.dialect.SPEC`, so masking
follows a field wherever a network puts it), track 2's ``=`` / ``D`` separators, field 48's
secret tags. :mod:`ops.logs` and :mod:`ops.masking` (reprs) apply them. They fail closed: a
field the dialect does not know, or a value that cannot be parsed, is wiped, never printed.

* PAN (field 2): first 6 + last 4, the rest ``*``; not 12-19 ASCII digits -> wiped.
* Track 2 (35): nothing but the masked PAN.
* PIN block (52), ICC data (55), MACs (64, 128), expiry (14): wiped.
* Field 48: tags NP, PB, KP, KM wiped; unparseable -> the whole field wiped.
* Free text: card numbers and track 2 masked as above, PIN blocks and keys written next to
  their name wiped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from switch.protocol.dialect import SPEC
from switch.protocol.errors import MessageFormatError
from switch.protocol.field48 import SECRET_TAGS, decode_tags

WIPED: Final = "[wiped]"
PAN_DIGITS_MIN: Final = 12  # shorter than this, 6 + 4 would show almost everything
PAN_DIGITS_MAX: Final = 19
PAN_SHOWN_FIRST_DIGITS: Final = 6  # the BIN: which issuer, needed to read a log
PAN_SHOWN_LAST_DIGITS: Final = 4  # what a cardholder recognises
TRACK2_SEPARATORS: Final = ("=", "D")  # ISO 7813: '=' in ASCII, 'D' in the packed form


def mask_pan(pan: str) -> str:
    """``6225880123456789`` -> ``622588******6789``; anything not a PAN -> wiped."""
    if not (pan.isdigit() and pan.isascii() and PAN_DIGITS_MIN <= len(pan) <= PAN_DIGITS_MAX):
        return WIPED
    hidden = len(pan) - PAN_SHOWN_FIRST_DIGITS - PAN_SHOWN_LAST_DIGITS
    return pan[:PAN_SHOWN_FIRST_DIGITS] + "*" * hidden + pan[-PAN_SHOWN_LAST_DIGITS:]


def mask_track2(track2: str) -> str:
    """Track 2 keeps nothing but its masked PAN; without a separator it is wiped."""
    for separator in TRACK2_SEPARATORS:
        if separator in track2:
            return mask_pan(track2.split(separator, 1)[0])
    return WIPED


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
        return mask_track2(value)
    if rule == "tags":
        return _mask_tags(value)
    return WIPED


def _mask_tags(value: str) -> str:
    try:
        tags = decode_tags(value)
    except MessageFormatError:
        return WIPED
    shown = [f"{tag}={WIPED if tag in SECRET_TAGS else element}" for tag, element in tags.items()]
    return ";".join(shown)


# --- free text (issue 11 item 5) ------------------------------------------------------------

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
