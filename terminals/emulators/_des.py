"""Single-DES ECB on one block for the retail MAC (as TDES with K || K || K, which is DES).

Kept private to the card emulator: single DES appears only inside ISO 9797-1 algorithm 3.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes


def _cipher(key: bytes) -> Cipher[modes.ECB]:
    if len(key) != 8:
        raise ValueError("a single DES key is 8 bytes")
    return Cipher(TripleDES(key * 3), modes.ECB())  # noqa: S305


def des_ecb_encrypt(key: bytes, block: bytes) -> bytes:
    encryptor = _cipher(key).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def des_ecb_decrypt(key: bytes, block: bytes) -> bytes:
    decryptor = _cipher(key).decryptor()
    return decryptor.update(block) + decryptor.finalize()
