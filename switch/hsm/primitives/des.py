"""DES and Triple-DES (TDES) block operations on clear keys.

``cryptography`` deprecates single- and two-key TDES (they live in
``hazmat.decrepit`` and warn for 8- and 16-byte keys), so every key is expanded
here to the 24-byte three-key form: K -> KKK, K1K2 -> K1K2K1. The result is
bit-for-bit the same cipher. DES parity bits are ignored on input (the cipher
never reads them), as ATM_HOST_SPEC section 7 requires.

Cipher contexts are cached per key: an ECB context can be reused for any
whole number of blocks, which turns a TDES block into a ~1 us call. The
contexts are not thread-safe; the switch runs the HSM in one Trio thread.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from switch.hsm.primitives.errors import DataLengthError, KeyLengthError

des_block_bytes = 8
# Distinct TDES keys whose ECB contexts stay cached; beyond this the least
# recently used is dropped (one switch holds ~3 working keys per terminal).
tdes_context_cache_keys_max = 4096


def expand_tdes_key(key: bytes) -> bytes:
    """Return the 24-byte three-key form of a single, double or triple length key."""
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return bytes(key)
    raise KeyLengthError(f"a DES/TDES key is 8, 16 or 24 bytes, not {len(key)}")


def _check_blocks(data: bytes) -> None:
    if len(data) % des_block_bytes:
        raise DataLengthError(f"TDES data must be a multiple of 8 bytes, not {len(data)}")


@lru_cache(maxsize=tdes_context_cache_keys_max)
def _ecb_contexts(key24: bytes) -> tuple[Any, Any]:
    # ECB is what the standards specify for single-block PIN, KCV and derivation steps.
    cipher = Cipher(TripleDES(key24), modes.ECB())  # noqa: S305
    return cipher.encryptor(), cipher.decryptor()


def tdes_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """TDES-ECB encrypt whole 8-byte blocks under an 8/16/24-byte key."""
    _check_blocks(data)
    result: bytes = _ecb_contexts(expand_tdes_key(key))[0].update(data)
    return result


def tdes_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """TDES-ECB decrypt whole 8-byte blocks under an 8/16/24-byte key."""
    _check_blocks(data)
    result: bytes = _ecb_contexts(expand_tdes_key(key))[1].update(data)
    return result


def des_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """Single-DES ECB (an 8-byte key, run as TDES K K K)."""
    if len(key) != 8:
        raise KeyLengthError(f"a single DES key is 8 bytes, not {len(key)}")
    return tdes_ecb_encrypt(key, data)


def des_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """Single-DES ECB decryption (an 8-byte key)."""
    if len(key) != 8:
        raise KeyLengthError(f"a single DES key is 8 bytes, not {len(key)}")
    return tdes_ecb_decrypt(key, data)


def tdes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """TDES-CBC encrypt whole blocks (no padding is added)."""
    _check_blocks(data)
    if len(iv) != des_block_bytes:
        raise DataLengthError("a TDES IV is 8 bytes")
    encryptor = Cipher(TripleDES(expand_tdes_key(key)), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def tdes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """TDES-CBC decrypt whole blocks (no padding is removed)."""
    _check_blocks(data)
    if len(iv) != des_block_bytes:
        raise DataLengthError("a TDES IV is 8 bytes")
    decryptor = Cipher(TripleDES(expand_tdes_key(key)), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def adjust_odd_parity(key: bytes) -> bytes:
    """Set each byte's low bit so the byte has odd parity (how DES keys are written)."""
    return bytes((b & 0xFE) | ((bin(b & 0xFE).count("1") + 1) & 1) for b in key)


def has_odd_parity(key: bytes) -> bool:
    """True when every byte has an odd number of 1 bits."""
    return all(bin(b).count("1") % 2 == 1 for b in key)


def xor_bytes(left: bytes, right: bytes) -> bytes:
    """Byte-wise XOR of two equal-length strings."""
    if len(left) != len(right):
        raise DataLengthError("XOR operands differ in length")
    return (int.from_bytes(left, "big") ^ int.from_bytes(right, "big")).to_bytes(len(left), "big")
