"""Message authentication codes: ISO 9797-1 MAC algorithm 3 (retail MAC), CMAC.

Retail MAC (ATM_HOST_SPEC section 8): padding method 1 (zero bytes up to a
block; an empty message becomes one zero block), single-DES CBC under the
left key half, and the last block decrypted under the right half and
encrypted again under the left. The last step is exactly one TDES-EDE
encryption under K1 K2 K1, which is how it is computed here.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms

from switch.hsm.primitives.aes import check_aes_key
from switch.hsm.primitives.des import (
    des_block_bytes,
    expand_tdes_key,
    tdes_cbc_encrypt,
    tdes_ecb_encrypt,
    xor_bytes,
)
from switch.hsm.primitives.errors import KeyLengthError

retail_mac_bytes = 8
cmac_cache_keys_max = 4096


def pad_iso9797_method1(data: bytes, block_bytes: int = des_block_bytes) -> bytes:
    """Zero-pad to a whole number of blocks; an empty string becomes one zero block."""
    if not data:
        return bytes(block_bytes)
    remainder = len(data) % block_bytes
    return data if remainder == 0 else data + bytes(block_bytes - remainder)


def pad_iso9797_method2(data: bytes, block_bytes: int = des_block_bytes) -> bytes:
    """Append 0x80 then zeros up to a whole number of blocks."""
    padded = data + b"\x80"
    remainder = len(padded) % block_bytes
    return padded if remainder == 0 else padded + bytes(block_bytes - remainder)


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO 9797-1 MAC algorithm 3, padding method 1, under a double-length key; 8 bytes."""
    return retail_mac_padded(key, pad_iso9797_method1(data))


def retail_mac_padded(key: bytes, padded: bytes) -> bytes:
    """ISO 9797-1 MAC algorithm 3 over data already padded to whole blocks (any method)."""
    if len(key) != 16:
        raise KeyLengthError(f"a retail MAC key is 16 bytes (K, K'), not {len(key)}")
    left = key[:8]
    chain = bytes(des_block_bytes)
    if len(padded) > des_block_bytes:
        chain = tdes_cbc_encrypt(left, padded[:-des_block_bytes])[-des_block_bytes:]
    last = xor_bytes(padded[-des_block_bytes:], chain)
    return tdes_ecb_encrypt(key, last)


@lru_cache(maxsize=cmac_cache_keys_max)
def _aes_cmac_base(key: bytes) -> cmac.CMAC:
    check_aes_key(key)
    return cmac.CMAC(algorithms.AES(key))


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B, RFC 4493); the full 16-byte tag."""
    mac = _aes_cmac_base(bytes(key)).copy()
    mac.update(data)
    return mac.finalize()


def tdes_cmac(key: bytes, data: bytes) -> bytes:
    """TDES-CMAC (NIST SP 800-38B, 8-byte blocks); the full 8-byte tag."""
    mac = cmac.CMAC(TripleDES(expand_tdes_key(key)))
    mac.update(data)
    return mac.finalize()
