"""Creating, combining, exporting and importing keys (synchronous helpers of SoftwareHsm).

Clear keys appear here only transiently; what leaves is a handle, a KCV, a
TR-31 block under a KEK, or -- the documented ceremony exception -- the clear
components of a newly generated terminal master key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from switch.hsm.errors import KeyMaterialError, KeyUsageError
from switch.hsm.key_usage import (
    MODES_DECRYPT,
    MODES_ENCRYPT,
    NARROWER_MODES,
    NEVER_EXPORTABLE_USAGES,
    check_new_key,
    require,
    rule_for,
)
from switch.hsm.keystore import ClearKey, KeyStore
from switch.hsm.primitives.des import adjust_odd_parity, xor_bytes
from switch.hsm.primitives.errors import KeyBlockError
from switch.hsm.primitives.kcv import kcv_aes, kcv_tdes
from switch.hsm.primitives.keys import random_aes_key, random_tdes_key
from switch.hsm.primitives.tr31 import Tr31Header, tr31_unwrap, tr31_wrap

components_count_min = 2
components_count_max = 3
_usage_k0 = frozenset({"K0"})


def kcv_of(algorithm: str, key: bytes) -> str:
    """6-hex KCV: TDES encrypt-zeros, AES CMAC method (docs/hsm.md)."""
    return kcv_aes(key) if algorithm == "A" else kcv_tdes(key)


def random_key(algorithm: str, length_bytes: int) -> bytes:
    return random_aes_key(length_bytes) if algorithm == "A" else random_tdes_key(length_bytes)


def new_header(
    usage: str, algorithm: str, *, exportable: bool, mode: str | None = None
) -> Tr31Header:
    rule = rule_for(usage)
    chosen = rule.default_mode if mode is None else mode
    if chosen not in rule.modes:
        raise KeyUsageError(f"usage {usage} does not allow mode of use {chosen!r}")
    exportable = exportable and usage not in NEVER_EXPORTABLE_USAGES
    return Tr31Header("D", usage, algorithm, chosen, "00", "E" if exportable else "N")


def store_new_key(
    store: KeyStore,
    usage: str,
    algorithm: str,
    key: bytes,
    *,
    exportable: bool,
    mode: str | None = None,
) -> str:
    check_new_key(usage, algorithm, len(key))
    if algorithm == "T":
        key = adjust_odd_parity(key)
    return store.wrap(new_header(usage, algorithm, exportable=exportable, mode=mode), key)


def parse_components(components: Sequence[str], algorithm: str) -> list[bytes]:
    """Decode 2 or 3 hex components of equal, valid length."""
    if not components_count_min <= len(components) <= components_count_max:
        raise KeyMaterialError("a key is formed from 2 or 3 components")
    try:
        parts = [bytes.fromhex(c.strip()) for c in components]
    except ValueError:
        raise KeyMaterialError("key components are hexadecimal") from None
    if len({len(p) for p in parts}) != 1:
        raise KeyMaterialError("key components must all have the same length")
    allowed = (16, 24) if algorithm == "T" else (16, 24, 32)
    if len(parts[0]) not in allowed:
        raise KeyMaterialError(f"a component for algorithm {algorithm} is {allowed} bytes")
    return parts


def combine_components(parts: Sequence[bytes]) -> bytes:
    key = parts[0]
    for part in parts[1:]:
        key = xor_bytes(key, part)
    return key


def check_component_kcvs(parts: Sequence[bytes], kcvs: Sequence[str], algorithm: str) -> None:
    if len(kcvs) != len(parts):
        raise KeyMaterialError("give one KCV per component")
    for index, (part, kcv) in enumerate(zip(parts, kcvs, strict=True), start=1):
        if kcv_of(algorithm, adjust_odd_parity(part) if algorithm == "T" else part) != kcv.upper():
            raise KeyMaterialError(f"component {index} does not match its KCV")


def generate_for_delivery(
    store: KeyStore, usage: str, kek: ClearKey, algorithm: str, delivered_mode: str
) -> tuple[str, str]:
    """A new non-exportable key and, made in the same step, its one copy under ``kek``.

    The key exchange of spec 5.1/7: the terminal's TR-31 block (exportability N) is
    the only copy that ever leaves; the stored handle cannot be exported later.
    """
    key = random_key(algorithm, 16)
    if algorithm == "T":
        key = adjust_odd_parity(key)
    handle = store_new_key(store, usage, algorithm, key, exportable=False)
    stored = ClearKey(new_header(usage, algorithm, exportable=True), key)
    return handle, export_block(stored, kek, mode_of_use=delivered_mode, exportability="N")


def check_wrapping_key(key: ClearKey, kek: ClearKey) -> None:
    """Only a key-encryption key whose header allows encryption wraps an export, and it
    must be at least as strong as the key it wraps."""
    require(kek.header, _usage_k0, MODES_ENCRYPT, "key export")
    if key.header.algorithm == "A" and kek.header.algorithm == "T":
        raise KeyUsageError("an AES key cannot be exported under a (weaker) TDES KEK")
    if len(kek.key) < len(key.key):
        raise KeyUsageError("a key cannot be exported under a shorter (weaker) KEK")


def export_block(
    key: ClearKey, kek: ClearKey, *, mode_of_use: str | None, exportability: str
) -> str:
    """Wrap a key under a KEK: version B under a TDES KEK, D under an AES KEK."""
    check_wrapping_key(key, kek)
    if key.header.exportability not in ("E", "S"):
        raise KeyUsageError(
            f"a {key.header.key_usage} key marked non-exportable cannot leave the HSM"
        )
    mode = key.header.mode_of_use if mode_of_use is None else mode_of_use
    if mode not in NARROWER_MODES.get(key.header.mode_of_use, frozenset(key.header.mode_of_use)):
        raise KeyUsageError(
            f"export cannot widen mode of use {key.header.mode_of_use!r} to {mode!r}"
        )
    version = "B" if kek.header.algorithm == "T" else "D"
    header = Tr31Header(
        version,
        key.header.key_usage,
        key.header.algorithm,
        mode,
        key.header.key_version,
        exportability,
    )
    return tr31_wrap(kek.key, header, key.key)


def import_block(store: KeyStore, block: str, kek: ClearKey) -> str:
    """Unwrap a TR-31 block under a KEK and re-wrap it under the LMK with its attributes."""
    require(kek.header, _usage_k0, MODES_DECRYPT, "key import")
    try:
        header, key = tr31_unwrap(kek.key, block)
    except KeyBlockError as exc:
        raise KeyMaterialError(f"cannot import key block: {exc}") from None
    rule = check_new_key(header.key_usage, header.algorithm, len(key))
    if header.mode_of_use not in rule.modes:
        raise KeyUsageError(f"usage {header.key_usage} does not allow mode {header.mode_of_use!r}")
    if header.key_usage in NEVER_EXPORTABLE_USAGES:
        header = dataclasses.replace(header, exportability="N")
    return store.wrap(header, key)
