"""The LMK as key components for custodians: the LMK never goes into a backup.

``split`` makes N random components whose XOR is the LMK (each alone says nothing about it),
each shown with its own check value so a custodian can confirm what they keyed in; ``join``
checks every component's KCV and the combined LMK's KCV. KCVs are AES-CMAC check values
(:func:`switch.hsm.key_management.kcv_of`, docs/hsm.md).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import reduce
from typing import Final

from switch.hsm.key_management import kcv_of

COMPONENTS_MIN: Final = 2
COMPONENTS_MAX: Final = 3
LMK_BYTES: Final = 32


class LmkSplitError(ValueError):
    """A component is malformed or its check value does not match (never shows the value)."""


@dataclass(frozen=True, slots=True, repr=False)
class LmkComponent:
    value_hex: str
    kcv: str


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def lmk_kcv(lmk: bytes) -> str:
    return kcv_of("A", lmk)


def lmk_fingerprint(lmk: bytes) -> str:
    """Names which LMK a backup needs, without revealing it (a one-way hash of a 256-bit key)."""
    return hashlib.sha256(b"atm-switch LMK fingerprint\x00" + lmk).hexdigest()[:32]


def split(lmk: bytes, count: int = COMPONENTS_MIN) -> list[LmkComponent]:
    if len(lmk) != LMK_BYTES or not COMPONENTS_MIN <= count <= COMPONENTS_MAX:
        raise LmkSplitError(f"an LMK of {LMK_BYTES} bytes splits into 2 or 3 components")
    parts = [secrets.token_bytes(LMK_BYTES) for _ in range(count - 1)]
    parts.append(reduce(_xor, parts, lmk))
    return [LmkComponent(part.hex().upper(), kcv_of("A", part)) for part in parts]


def join(components: list[tuple[str, str]], expected_kcv: str | None = None) -> bytes:
    """The LMK from ``(component_hex, kcv)`` pairs; every KCV is checked."""
    if not COMPONENTS_MIN <= len(components) <= COMPONENTS_MAX:
        raise LmkSplitError("give 2 or 3 LMK components")
    parts = []
    for index, (text, kcv) in enumerate(components, start=1):
        try:
            part = bytes.fromhex(text.strip())
        except ValueError:
            raise LmkSplitError(f"component {index} is not hexadecimal") from None
        if len(part) != LMK_BYTES:
            raise LmkSplitError(f"component {index} must be {LMK_BYTES * 2} hex digits")
        if not secrets.compare_digest(kcv_of("A", part), kcv.strip().upper()):
            raise LmkSplitError(f"component {index}: check value does not match")
        parts.append(part)
    lmk = reduce(_xor, parts[1:], parts[0])
    if expected_kcv is not None and lmk_kcv(lmk) != expected_kcv.upper():
        raise LmkSplitError("the combined LMK's check value does not match")
    return lmk
