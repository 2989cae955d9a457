"""Key check values: show which key is loaded without revealing it.

TDES: encrypt 8 zero bytes, keep the leftmost bytes (the long-standing
convention; ANSI X9.24-1). AES: the CMAC of 16 zero bytes, leftmost bytes
(the method of ANSI X9.24-1:2017 and TR-31:2018 for AES keys; encrypting
zeros under AES is the older, weaker "legacy" method, offered separately).
Six hex digits (3 bytes) is what key ceremonies print; docs/hsm.md says so.
"""

from __future__ import annotations

from switch.hsm.primitives.aes import aes_ecb_encrypt, check_aes_key
from switch.hsm.primitives.des import tdes_ecb_encrypt
from switch.hsm.primitives.mac import aes_cmac

kcv_bytes_default = 3


def kcv_tdes(key: bytes, length_bytes: int = kcv_bytes_default) -> str:
    """TDES/DES KCV: leftmost bytes of E(key, 0^8), upper-case hex."""
    return tdes_ecb_encrypt(key, bytes(8))[:length_bytes].hex().upper()


def kcv_aes(key: bytes, length_bytes: int = kcv_bytes_default) -> str:
    """AES KCV by the CMAC method: leftmost bytes of CMAC(key, 0^16), upper-case hex."""
    check_aes_key(key)
    return aes_cmac(key, bytes(16))[:length_bytes].hex().upper()


def kcv_aes_legacy(key: bytes, length_bytes: int = kcv_bytes_default) -> str:
    """AES KCV by the legacy method: leftmost bytes of E(key, 0^16)."""
    return aes_ecb_encrypt(key, bytes(16))[:length_bytes].hex().upper()
