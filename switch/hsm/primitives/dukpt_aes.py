"""AES DUKPT (ANSI X9.24-3:2017), host side: BDK + KSN -> working keys.

KSN: 12 bytes = 8-byte initial key ID (BDK ID + derivation ID) + 32-bit
transaction counter with at most 16 one bits. Every key is derived by
AES-ECB-encrypting 16-byte derivation data blocks under the parent key
(one block per 128 output bits):

    01 | block counter | key usage (2) | algorithm (2) | length in bits (2) | 8 context bytes

The initial key uses usage 8001 and the initial key ID as context; each
1 bit of the counter (left to right) is one step with usage 8000 and the
context "derivation ID + counter so far"; working keys use their own usage
(PIN encryption 1000, MAC 2000-2002, data 3000-3002) with the full counter.
"""

from __future__ import annotations

from enum import IntEnum

from switch.hsm.primitives.aes import aes_ecb_encrypt, check_aes_key
from switch.hsm.primitives.errors import DukptError

ksn_bytes = 12
initial_key_id_bytes = 8
counter_one_bits_max = 16


class KeyUsage(IntEnum):
    """Derivation data key-usage indicators (X9.24-3 table of derivation data)."""

    KEY_ENCRYPTION = 0x0002
    PIN_ENCRYPTION = 0x1000
    MAC_GENERATION = 0x2000
    MAC_VERIFICATION = 0x2001
    MAC_BOTH = 0x2002
    DATA_ENCRYPT = 0x3000
    DATA_DECRYPT = 0x3001
    DATA_BOTH = 0x3002
    KEY_DERIVATION = 0x8000
    INITIAL_KEY = 0x8001


class KeyType(IntEnum):
    """Derivation data algorithm indicators; the value names the derived key type."""

    TDES_2KEY = 0x0000
    TDES_3KEY = 0x0001
    AES128 = 0x0002
    AES192 = 0x0003
    AES256 = 0x0004


key_type_bits = {
    KeyType.TDES_2KEY: 128,
    KeyType.TDES_3KEY: 192,
    KeyType.AES128: 128,
    KeyType.AES192: 192,
    KeyType.AES256: 256,
}


def key_type_for_aes(key: bytes) -> KeyType:
    check_aes_key(key)
    return {16: KeyType.AES128, 24: KeyType.AES192, 32: KeyType.AES256}[len(key)]


def _derive(key: bytes, usage: KeyUsage, key_type: KeyType, context: bytes) -> bytes:
    bits = key_type_bits[key_type]
    blocks = []
    for counter in range(1, (bits + 127) // 128 + 1):
        data = (
            bytes([0x01, counter])
            + int(usage).to_bytes(2, "big")
            + int(key_type).to_bytes(2, "big")
            + bits.to_bytes(2, "big")
            + context
        )
        blocks.append(aes_ecb_encrypt(key, data))
    return b"".join(blocks)[: bits // 8]


def _check_ksn(ksn: bytes) -> int:
    if len(ksn) != ksn_bytes:
        raise DukptError("an AES DUKPT KSN is 12 bytes")
    counter = int.from_bytes(ksn[8:], "big")
    if counter == 0 or bin(counter).count("1") > counter_one_bits_max:
        raise DukptError("an AES DUKPT counter is non-zero with at most 16 one bits")
    return counter


def derive_initial_key(bdk: bytes, initial_key_id: bytes) -> bytes:
    """The device's initial key (IK) from the BDK and the 8-byte initial key ID."""
    if len(initial_key_id) != initial_key_id_bytes:
        raise DukptError("an AES DUKPT initial key ID is 8 bytes")
    return _derive(bdk, KeyUsage.INITIAL_KEY, key_type_for_aes(bdk), initial_key_id)


def derive_transaction_key(initial_key: bytes, ksn: bytes) -> bytes:
    """The derivation key for ``ksn`` (one step per 1 bit of the counter)."""
    counter = _check_ksn(ksn)
    key_type = key_type_for_aes(initial_key)
    derivation_id = ksn[4:8]
    key = initial_key
    so_far = 0
    for bit in range(31, -1, -1):
        if counter & (1 << bit):
            so_far |= 1 << bit
            key = _derive(
                key, KeyUsage.KEY_DERIVATION, key_type, derivation_id + so_far.to_bytes(4, "big")
            )
    return key


def derive_working_key(
    bdk: bytes, ksn: bytes, usage: KeyUsage, key_type: KeyType = KeyType.AES128
) -> bytes:
    """A working key (PIN, MAC, data) of ``key_type`` for the transaction ``ksn``."""
    _check_ksn(ksn)
    initial_key = derive_initial_key(bdk, ksn[:8])
    transaction_key = derive_transaction_key(initial_key, ksn)
    return _derive(transaction_key, usage, key_type, ksn[4:])
