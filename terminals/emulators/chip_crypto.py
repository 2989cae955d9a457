"""The emulated chip card's own cryptography, exactly as spec section 11 states it.

The card is another party than the switch, so this does not import ``switch.hsm``: a mistake in
one would otherwise hide the same mistake in the other. Tests compare both with ``pyemv``.

- MK-AC: EMV Book 2 A1.4.1 option A from the issuer's IMK-AC, the PAN and the PSN (done once, at
  personalisation: a real card holds only MK-AC).
- SK-AC: Book 2 A1.3.1 common session key from the ATC.
- Application cryptograms: ISO 9797-1 MAC algorithm 3 with padding method 2 under SK-AC.
- ARPC method 1 (Book 2 8.2.1): TDES(SK-AC, ARQC XOR (ARC || 00..00)).

Keys are double-length TDES (K1 || K2); DES ignores parity bits, so none are adjusted.
"""

from __future__ import annotations

import hmac
from typing import Final

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from terminals.emulators._des import des_ecb_decrypt, des_ecb_encrypt

block_bytes: Final = 8
key_bytes: Final = 16


def _tdes_encrypt_block(key: bytes, block: bytes) -> bytes:
    if len(key) != key_bytes or len(block) != block_bytes:
        raise ValueError("double-length key and one 8-byte block expected")
    encryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()  # noqa: S305
    return encryptor.update(block) + encryptor.finalize()


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def derive_mk_ac(imk_ac: bytes, pan: str, psn: str) -> bytes:
    """Option A: Y = rightmost 16 digits of PAN || PSN, left-filled with 0, as 8 BCD bytes."""
    digits = (pan + psn)[-16:].rjust(16, "0")
    if not digits.isdigit():
        raise ValueError("PAN and PSN must be digits")
    y = bytes.fromhex(digits)
    return _tdes_encrypt_block(imk_ac, y) + _tdes_encrypt_block(imk_ac, _xor(y, b"\xff" * 8))


def derive_sk_ac(mk_ac: bytes, atc: int) -> bytes:
    """Common session key: R = ATC || 000000000000, byte 3 set to F0 / 0F."""
    r = atc.to_bytes(2, "big") + bytes(6)
    left = r[:2] + b"\xf0" + r[3:]
    right = r[:2] + b"\x0f" + r[3:]
    return _tdes_encrypt_block(mk_ac, left) + _tdes_encrypt_block(mk_ac, right)


def pad_method_2(data: bytes) -> bytes:
    """ISO 9797-1 padding method 2: 80, then 00 to a multiple of 8 (a whole block if aligned)."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block_bytes)


def mac_algorithm_3(key: bytes, data: bytes) -> bytes:
    """ISO 9797-1 MAC algorithm 3 (retail MAC), padding method 2, 8-byte result."""
    left, right = key[:8], key[8:]
    chained = bytes(block_bytes)
    for offset in range(0, len(padded := pad_method_2(data)), block_bytes):
        chained = des_ecb_encrypt(left, _xor(chained, padded[offset : offset + block_bytes]))
    return des_ecb_encrypt(left, des_ecb_decrypt(right, chained))


def application_cryptogram(sk_ac: bytes, data: bytes) -> bytes:
    """ARQC / TC / AAC over the data D of spec 11 (values only)."""
    return mac_algorithm_3(sk_ac, data)


def arpc_method_1(sk_ac: bytes, arqc: bytes, arc: bytes) -> bytes:
    """ARPC = TDES(SK-AC, ARQC XOR (ARC || 000000000000))."""
    if len(arc) != 2:
        raise ValueError("the ARC is 2 bytes")
    return _tdes_encrypt_block(sk_ac, _xor(arqc, arc + bytes(6)))


def arpc_matches(sk_ac: bytes, arqc: bytes, arc: bytes, arpc: bytes) -> bool:
    """Constant-time check of an ARPC the host sent."""
    return hmac.compare_digest(arpc_method_1(sk_ac, arqc, arc), arpc)


