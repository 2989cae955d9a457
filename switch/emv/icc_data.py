"""Field 55 of a chip 0200 and of its 0210, as section 11 defines them (data, no decisions).

``REQUIRED_TAGS`` is section 11's table as data: every tag a chip 0200 must carry and the
lengths it may have. ``parse_icc_data`` turns field 55 into an :class:`IccData` or raises
:class:`ChipFormatError` (``30``): malformed TLV, a missing tag, a tag of another length.
Tags the table does not name are ignored (kept, never read). ``IccData.cryptogram_data``
is D of section 11 step 3, the ARQC's input; ``response_field55`` is the 0210's tag 91.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from switch.emv.tlv import TlvError, decode_tlv_hex, encode_tlv_hex


@dataclass(frozen=True, slots=True)
class TagRule:
    name: str
    length_min: int
    length_max: int


def _rule(name: str, length_min: int, length_max: int | None = None) -> TagRule:
    return TagRule(name, length_min, length_min if length_max is None else length_max)


# Section 11's table: tag -> name and allowed value length in bytes.
REQUIRED_TAGS: Final[Mapping[str, TagRule]] = MappingProxyType(
    {
        "9F26": _rule("application cryptogram (ARQC)", 8),
        "9F27": _rule("cryptogram information data", 1),
        "9F10": _rule("issuer application data", 1, 32),
        "9F37": _rule("unpredictable number", 4),
        "9F36": _rule("application transaction counter", 2),
        "95": _rule("terminal verification results", 5),
        "9A": _rule("transaction date", 3),
        "9C": _rule("transaction type", 1),
        "9F02": _rule("amount, authorised", 6),
        "9F03": _rule("amount, other", 6),
        "5F2A": _rule("transaction currency code", 2),
        "82": _rule("application interchange profile", 2),
        "9F1A": _rule("terminal country code", 2),
    }
)
# D of section 11 step 3: these values, in this order, no tags or lengths.
CRYPTOGRAM_DATA_TAGS: Final = (
    "9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36", "9F10"
)  # fmt: skip
CID_TYPE_MASK: Final = 0xC0  # 9F27 bits 8-7: the cryptogram type
CID_ARQC: Final = 0x80
ARPC_TAG: Final = "91"


class ChipFormatError(ValueError):
    """A chip 0200's field 23 or 55 breaks section 11's format; the answer is ``30``."""

    response_code_hint: Final = "30"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IccData:
    """The tags of a chip 0200's field 55. ``repr`` shows tag names only (55 is wiped in logs)."""

    items: Mapping[str, bytes] = field(repr=False)

    def __repr__(self) -> str:
        return f"IccData(tags={sorted(self.items)})"

    @property
    def arqc(self) -> bytes:
        return self.items["9F26"]

    @property
    def atc(self) -> int:
        return int.from_bytes(self.items["9F36"], "big")

    @property
    def is_arqc(self) -> bool:
        """9F27 says the card asked to go online: (CID AND C0) = 80."""
        return self.items["9F27"][0] & CID_TYPE_MASK == CID_ARQC

    def hex_of(self, tag: str) -> str:
        """A value as upper-case hex (BCD values read as their digits)."""
        return self.items[tag].hex().upper()

    def cryptogram_data(self) -> bytes:
        """D: 9F02 || 9F03 || 9F1A || 95 || 5F2A || 9A || 9C || 9F37 || 82 || 9F36 || 9F10."""
        return b"".join(self.items[tag] for tag in CRYPTOGRAM_DATA_TAGS)


def parse_icc_data(field55: str) -> IccData:
    """Field 55 of a chip 0200 -> its tags, or ``ChipFormatError``."""
    try:
        items = decode_tlv_hex(field55)
    except TlvError as exc:
        raise ChipFormatError(f"field 55: {exc}") from None
    for tag, rule in REQUIRED_TAGS.items():
        value = items.get(tag)
        if value is None:
            raise ChipFormatError(f"field 55 lacks tag {tag} ({rule.name})")
        if not rule.length_min <= len(value) <= rule.length_max:
            raise ChipFormatError(f"field 55 tag {tag} has {len(value)} bytes")
    return IccData(MappingProxyType(items))


def response_field55(arpc: bytes, response_code: str) -> str:
    """The 0210's field 55: tag 91 = ARPC || ARC (ARC = field 39 in ASCII): ``910A`` + 20 hex."""
    return encode_tlv_hex({ARPC_TAG: arpc + response_code.encode("ascii")})
