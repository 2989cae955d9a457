"""Message authentication codes: ISO 9797-1 MAC algorithm 3 (retail MAC), CMAC.

Retail MAC (ATM_HOST_SPEC section 8): padding method 1 (zero bytes up to a
block; an empty message becomes one zero block), single-DES CBC under the
left key half, and the last block decrypted under the right half and
encrypted again under the left. The last step is exactly one TDES-EDE
encryption under K1 K2 K1.

Cipher contexts are cached per key (issue 10): creating a ``cryptography`` CBC
context costs ~10 µs, more than MACing a whole 0200 with one. A retail-MAC key
keeps one persistent CBC encryptor for the chain under K1; a CBC context
carries its last cipher block into the next call, so each message's first
block is XORed with that block, which restarts the chain from a zero IV. The
final step runs in two cached ECB contexts (decrypt under K2, encrypt under K1).
The result is bit for bit the same as :func:`retail_mac_uncached` (tested with
hypothesis). AES-CMAC copies a cached, keyed CMAC object per message.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

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
# Distinct MAC keys whose contexts stay cached (least recently used dropped first):
# one TAK per terminal, a few thousand terminals, plus the network ZAKs.
cmac_cache_keys_max = 8192
retail_mac_cache_keys_max = 8192


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
    return retail_mac_key(bytes(key)).mac(data)


class RetailMacKey:
    """The cipher contexts of one retail-MAC key, reused for every message MACed with it.

    Holds no key bytes of its own (only ``cryptography`` contexts) and shows none in
    ``repr``. Safe across threads: a call that finds the chain in use by another
    thread computes from fresh contexts instead of sharing it.
    """

    __slots__ = ("_busy", "_chain", "_chain_last", "_k1_encrypt", "_k2_decrypt", "_left")

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise KeyLengthError(f"a retail MAC key is 16 bytes (K, K'), not {len(key)}")
        # ECB here is the standard's single-block final transformation (ISO 9797-1 alg 3).
        ecb = modes.ECB()  # noqa: S305
        self._left = Cipher(TripleDES(key[:8] * 3), ecb)  # single DES as TDES K1 K1 K1
        self._k1_encrypt = self._left.encryptor()
        self._k2_decrypt = Cipher(TripleDES(key[8:] * 3), ecb).decryptor()
        self._busy = threading.Lock()
        self._chain: Any = None
        self._chain_last = 0
        self._restart_chain()

    def __repr__(self) -> str:
        return "RetailMacKey(<cached contexts>)"

    def _restart_chain(self) -> None:
        self._chain = Cipher(self._left.algorithm, modes.CBC(bytes(des_block_bytes))).encryptor()
        self._chain_last = 0

    def mac(self, data: bytes) -> bytes:
        """The 8-byte retail MAC of ``data``."""
        padded = pad_iso9797_method1(data)
        if not self._busy.acquire(blocking=False):
            return self._final(self._fresh_chain_last_block(padded))
        try:
            last_before = self._chain_last
            if last_before < 0:  # an earlier call died between update and bookkeeping
                self._restart_chain()
                last_before = 0
            self._chain_last = -1
            first = (int.from_bytes(padded[:8], "big") ^ last_before).to_bytes(8, "big")
            last = self._chain.update(first + padded[8:])[-des_block_bytes:]
            self._chain_last = int.from_bytes(last, "big")
        finally:
            self._busy.release()
        return self._final(last)

    def _fresh_chain_last_block(self, padded: bytes) -> bytes:
        chain = Cipher(self._left.algorithm, modes.CBC(bytes(des_block_bytes))).encryptor()
        last: bytes = chain.update(padded)[-des_block_bytes:]
        return last

    def _final(self, last: bytes) -> bytes:
        # D_K2 then E_K1 on the chain's last block (ECB contexts keep no state).
        result: bytes = self._k1_encrypt.update(self._k2_decrypt.update(last))
        return result


@lru_cache(maxsize=retail_mac_cache_keys_max)
def retail_mac_key(key: bytes) -> RetailMacKey:
    """The cached contexts of a retail-MAC key (bounded LRU, keyed by the clear key)."""
    return RetailMacKey(key)


def retail_mac_uncached(key: bytes, data: bytes) -> bytes:
    """:func:`retail_mac` from fresh contexts: the reference the cached path is tested against."""
    return retail_mac_padded(key, pad_iso9797_method1(data))


def retail_mac_padded(key: bytes, padded: bytes) -> bytes:
    """ISO 9797-1 MAC algorithm 3 over data already padded to whole blocks (any method;
    the EMV ARQC uses padding method 2). Fresh contexts: the reference path."""
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
