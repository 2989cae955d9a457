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
