"""AES block operations on clear keys (ECB contexts cached per key, like ``des``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from switch.hsm.primitives.errors import DataLengthError, KeyLengthError

aes_block_bytes = 16
aes_context_cache_keys_max = 4096
aes_key_lengths = (16, 24, 32)


def check_aes_key(key: bytes) -> None:
    if len(key) not in aes_key_lengths:
        raise KeyLengthError(f"an AES key is 16, 24 or 32 bytes, not {len(key)}")


def _check_blocks(data: bytes) -> None:
    if len(data) % aes_block_bytes:
        raise DataLengthError(f"AES data must be a multiple of 16 bytes, not {len(data)}")


@lru_cache(maxsize=aes_context_cache_keys_max)
def _ecb_contexts(key: bytes) -> tuple[Any, Any]:
    check_aes_key(key)
    # ECB is what the standards specify for single-block PIN, KCV and derivation steps.
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305
    return cipher.encryptor(), cipher.decryptor()


def aes_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """AES-ECB encrypt whole 16-byte blocks."""
    _check_blocks(data)
    result: bytes = _ecb_contexts(bytes(key))[0].update(data)
    return result


def aes_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """AES-ECB decrypt whole 16-byte blocks."""
    _check_blocks(data)
    result: bytes = _ecb_contexts(bytes(key))[1].update(data)
    return result


def aes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    """AES-CBC encrypt whole blocks (no padding is added)."""
    check_aes_key(key)
    _check_blocks(data)
    if len(iv) != aes_block_bytes:
        raise DataLengthError("an AES IV is 16 bytes")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def aes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    """AES-CBC decrypt whole blocks (no padding is removed)."""
    check_aes_key(key)
    _check_blocks(data)
    if len(iv) != aes_block_bytes:
        raise DataLengthError("an AES IV is 16 bytes")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()
