"""The host dialect of spec section 2 as one literal pyiso8583 spec dict.

Every field this network uses is listed here once, with three kinds of facts:

* pyiso8583's keys (``data_enc``, ``len_enc``, ``len_type``, ``max_len``, ``desc``)
  drive encoding and decoding. All ASCII; field 48 is UTF-8 and its LLLVAR length
  counts bytes (pyiso8583's default ``len_count``); 52/64/128 are 16 upper-case hex.
* ``content`` is the character class the value must match (pyiso8583 checks
  lengths only): ``n`` digits, ``an`` letters/digits/space, ``ans`` printable
  ASCII, ``z`` track-2 characters, ``hex`` upper-case hex, ``text`` any UTF-8.
* ``mask`` says how a log may show the value (:mod:`switch.protocol.masking`): ``clear``,
  ``pan`` (first 6 + last 4), ``track2`` (only the masked PAN), ``tags`` (field
  48 with secret tags removed) or ``wipe``. A field without ``mask`` is wiped.

A field missing from this table is a format error (``30``): with a bitmap-only
format an unknown field's length cannot be known, so it cannot be skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final


def _fixed(length: int, content: str, mask: str, desc: str) -> dict[str, Any]:
    """A fixed-length ASCII field."""
    return {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 0,
        "max_len": length,
        "content": content,
        "mask": mask,
        "desc": desc,
    }


def _variable(
    digits: int, max_len: int, content: str, mask: str, desc: str, data_enc: str = "ascii"
) -> dict[str, Any]:
    """An LLVAR (digits=2) or LLLVAR (digits=3) field; the length counts bytes."""
    return {
        "data_enc": data_enc,
        "len_enc": "ascii",
        "len_type": digits,
        "max_len": max_len,
        "content": content,
        "mask": mask,
        "desc": desc,
    }


# One entry per field; see the module docstring for the keys.
SPEC: Final[dict[str, dict[str, Any]]] = {
    "h": {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 0,
        "max_len": 0,
        "desc": "No header",
    },
    "t": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 4, "desc": "MTI"},
    "p": {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 0,
        "max_len": 16,
        "desc": "Bitmap 1",
    },
    "1": {
        "data_enc": "ascii",
        "len_enc": "ascii",
        "len_type": 0,
        "max_len": 16,
        "desc": "Bitmap 2",
    },
    "2": _variable(2, 19, "n", "pan", "PAN"),
    "3": _fixed(6, "n", "clear", "Processing code"),
    "4": _fixed(12, "n", "clear", "Amount, transaction (minor units)"),
    "7": _fixed(10, "n", "clear", "Transmission date/time MMDDhhmmss UTC"),
    "11": _fixed(6, "n", "clear", "STAN"),
    "12": _fixed(6, "n", "clear", "Local time hhmmss"),
    "13": _fixed(4, "n", "clear", "Local date MMDD"),
    "14": _fixed(4, "n", "wipe", "Expiration date YYMM"),
    "15": _fixed(4, "n", "clear", "Settlement date MMDD"),
    "18": _fixed(4, "n", "clear", "Merchant type"),
    "22": _fixed(3, "n", "clear", "POS entry mode"),
    "23": _fixed(3, "n", "clear", "PAN sequence number, 0 + the 2-digit PSN (section 11)"),
    "32": _variable(2, 11, "n", "clear", "Acquiring institution id"),
    "35": _variable(2, 37, "z", "track2", "Track 2"),
    "37": _fixed(12, "an", "clear", "Retrieval reference number"),
    "38": _fixed(6, "an", "clear", "Authorization id"),
    "39": _fixed(2, "an", "clear", "Response code"),
    "41": _fixed(8, "ans", "clear", "Terminal id"),
    "42": _fixed(15, "ans", "clear", "Card acceptor id"),
    "43": _fixed(40, "ans", "clear", "Card acceptor name/location"),
    "48": _variable(3, 999, "text", "tags", "Additional data, tagged, UTF-8", data_enc="utf-8"),
    "49": _fixed(3, "n", "clear", "Currency code"),
    "52": _fixed(16, "hex", "wipe", "PIN block, 16 hex"),
    "54": _variable(3, 120, "an", "clear", "Additional amounts"),
    # Section 11: BER-TLV (switch/emv/tlv.py) as hex, the LLL counting hex characters; wiped
    # in logs (it carries track 2 equivalent data and cryptograms of the card).
    "55": _variable(3, 510, "hex", "wipe", "ICC data, BER-TLV as upper-case hex"),
    "64": _fixed(16, "hex", "wipe", "MAC, 16 hex"),
    "70": _fixed(3, "n", "clear", "Network management code"),
    "90": _fixed(42, "n", "clear", "Original data elements"),
    "95": _fixed(42, "an", "clear", "Replacement amounts"),
    "102": _variable(2, 28, "ans", "clear", "Account id 1 (from)"),
    "103": _variable(2, 28, "ans", "clear", "Account id 2 (to)"),
    "128": _fixed(16, "hex", "wipe", "MAC, 16 hex (secondary bitmap present)"),
}

#: Data fields of the dialect (bitmaps, header and MTI excluded), as ints.
DATA_FIELDS: Final[frozenset[int]] = frozenset(
    int(key) for key in SPEC if key.isdigit() and key != "1"
)

MAC_FIELD_PRIMARY: Final = "64"
MAC_FIELD_SECONDARY: Final = "128"
MAC_LENGTH_CHARS: Final = 16

# Character classes of the ``content`` key; fullmatch against the whole value.
CONTENT_PATTERNS: Final[dict[str, re.Pattern[str]]] = {
    "n": re.compile(r"[0-9]*"),
    "an": re.compile(r"[A-Za-z0-9 ]*"),
    "ans": re.compile(r"[\x20-\x7e]*"),
    "z": re.compile(r"[0-9=D]*"),
    "hex": re.compile(r"[0-9A-F]*"),
    # Any UTF-8 except C0 controls and DEL (a screen text never needs them).
    "text": re.compile(r"[^\x00-\x1f\x7f]*"),
}


def content_ok(field: str, value: str) -> bool:
    """True when ``value`` has the character class the dialect gives ``field``."""
    spec = SPEC.get(field)
    if spec is None or "content" not in spec:
        return False
    return CONTENT_PATTERNS[spec["content"]].fullmatch(value) is not None


def mac_field_for(field_keys: Iterable[str]) -> str:
    """The MAC field for a message with these fields (spec 8).

    128 when a secondary bitmap is needed (any of fields 65-127), otherwise 64.
    """
    secondary = any(key.isdigit() and 65 <= int(key) <= 127 for key in field_keys)
    return MAC_FIELD_SECONDARY if secondary else MAC_FIELD_PRIMARY
