"""Fresh random keys (from ``secrets``), DES keys with odd parity as they are written."""

from __future__ import annotations

import secrets

from switch.hsm.primitives.aes import check_aes_key
from switch.hsm.primitives.des import adjust_odd_parity
from switch.hsm.primitives.errors import KeyLengthError


def random_tdes_key(length_bytes: int = 16) -> bytes:
    """A random DES/TDES key of 8, 16 or 24 bytes with odd parity and distinct halves."""
    if length_bytes not in (8, 16, 24):
        raise KeyLengthError("a DES/TDES key is 8, 16 or 24 bytes")
    while True:
        key = adjust_odd_parity(secrets.token_bytes(length_bytes))
        # Equal halves would make a double-length key single DES.
        if length_bytes == 8 or key[:8] != key[8:16]:
            return key


def random_aes_key(length_bytes: int = 16) -> bytes:
    """A random AES key of 16, 24 or 32 bytes."""
    key = secrets.token_bytes(length_bytes)
    check_aes_key(key)
    return key
