"""Field 48 tagged elements (spec 3): ``TAG`` (2 upper-case letters) + ``LEN`` (3 digits) + value.

Field 48 is UTF-8 and "the length counts bytes" (spec 2). This codec applies that
to each element's LEN as well as to the field's LLLVAR prefix: ``LEN`` is the
number of UTF-8 bytes of the value, so ``王**`` is ``PN005王**`` (3 + 1 + 1).
Unknown tags are returned like any other and left to the receiver to ignore;
a malformed sequence is a :class:`MessageFormatError` (``30``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from switch.protocol.errors import MessageBuildError, MessageFormatError

TAG_PATTERN: Final = re.compile(r"[A-Z]{2}")
ELEMENT_HEADER_BYTES: Final = 5  # TAG 2 + LEN 3
ELEMENT_VALUE_BYTES_MAX: Final = 999  # LEN is 3 digits
FIELD_BYTES_MAX: Final = 999  # field 48 is ans..999 (LLLVAR)

# Tags whose values are secret: logs never show them (spec 3; switch.protocol.masking).
SECRET_TAGS: Final = frozenset({"NP", "PB", "KP", "KM"})


def decode_tags(value: str) -> dict[str, str]:
    """Split a field-48 value into ``{tag: value}``, keeping the order on the wire."""
    data = value.encode("utf-8")
    tags: dict[str, str] = {}
    position = 0
    while position < len(data):
        header = data[position : position + ELEMENT_HEADER_BYTES]
        if len(header) < ELEMENT_HEADER_BYTES:
            raise MessageFormatError("field 48 element header is truncated", field="48")
        tag = header[:2].decode("ascii", errors="replace")
        length_text = header[2:]
        if not TAG_PATTERN.fullmatch(tag):
            raise MessageFormatError(
                f"field 48 tag {tag!r} is not two upper-case letters", field="48"
            )
        if not (length_text.isdigit() and length_text.isascii()):
            raise MessageFormatError(f"field 48 tag {tag} has a non-numeric length", field="48")
        start = position + ELEMENT_HEADER_BYTES
        end = start + int(length_text)
        if end > len(data):
            raise MessageFormatError(f"field 48 tag {tag} is longer than the field", field="48")
        if tag in tags:
            raise MessageFormatError(f"field 48 tag {tag} appears twice", field="48")
        try:
            tags[tag] = data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            raise MessageFormatError(
                f"field 48 tag {tag} length splits a character", field="48"
            ) from None
        position = end
    return tags


def encode_tags(tags: Mapping[str, str]) -> str:
    """Join ``{tag: value}`` into a field-48 value, lengths in UTF-8 bytes."""
    parts: list[str] = []
    total_bytes = 0
    for tag, element in tags.items():
        if not TAG_PATTERN.fullmatch(tag):
            raise MessageBuildError(f"field 48 tag {tag!r} is not two upper-case letters")
        size = len(element.encode("utf-8"))
        if size > ELEMENT_VALUE_BYTES_MAX:
            raise MessageBuildError(
                f"field 48 tag {tag} value is {size} bytes (max {ELEMENT_VALUE_BYTES_MAX})"
            )
        parts.append(f"{tag}{size:03d}{element}")
        total_bytes += ELEMENT_HEADER_BYTES + size
    if total_bytes > FIELD_BYTES_MAX:
        raise MessageBuildError(f"field 48 would be {total_bytes} bytes (max {FIELD_BYTES_MAX})")
    return "".join(parts)
