"""TDES DUKPT (ANSI X9.24-1:2009 Annex A), host side: BDK + KSN -> working keys.

KSN: 10 bytes = 59-bit initial key serial number + 21-bit transaction counter.
IPEK: TDES(BDK, KSN with counter cleared)[:8] and the same under BDK XOR the
C0C0... mask. A transaction key is reached from the IPEK by one
non-reversible step for every 1 bit of the counter, left to right. Working
keys are the transaction key XOR a variant (PIN, MAC request/response, data).
"""

from __future__ import annotations

from switch.hsm.primitives.des import des_ecb_encrypt, tdes_ecb_encrypt, xor_bytes
from switch.hsm.primitives.errors import DukptError, KeyLengthError

ksn_bytes = 10
dukpt_key_bytes = 16
counter_bits = 21
counter_mask = (1 << counter_bits) - 1
# A.2: a counter has at most 10 one bits (the device skips the others).
counter_one_bits_max = 10

_key_mask = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")
pin_variant = bytes.fromhex("00000000000000FF00000000000000FF")
mac_request_variant = bytes.fromhex("000000000000FF00000000000000FF00")
mac_response_variant = bytes.fromhex("00000000FF00000000000000FF000000")
data_request_variant = bytes.fromhex("0000000000FF00000000000000FF0000")
data_response_variant = bytes.fromhex("000000FF00000000000000FF00000000")


def _check(bdk_or_key: bytes, ksn: bytes) -> None:
    if len(bdk_or_key) != dukpt_key_bytes:
        raise KeyLengthError("a TDES DUKPT key is 16 bytes")
    if len(ksn) != ksn_bytes:
        raise DukptError("a TDES DUKPT KSN is 10 bytes")


def ksn_counter(ksn: bytes) -> int:
    """The 21-bit transaction counter of a KSN."""
    return int.from_bytes(ksn[-3:], "big") & counter_mask


def derive_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """Initial PIN encryption key of the device named by ``ksn``."""
    _check(bdk, ksn)
    base = (int.from_bytes(ksn, "big") & ~counter_mask).to_bytes(ksn_bytes, "big")[:8]
    left = tdes_ecb_encrypt(bdk, base)
    right = tdes_ecb_encrypt(xor_bytes(bdk, _key_mask), base)
    return left + right


def _non_reversible(key: bytes, register: bytes) -> bytes:
    """A.2 non-reversible key generation process (one step)."""
    left, right = key[:8], key[8:]
    new_right = xor_bytes(des_ecb_encrypt(left, xor_bytes(register, right)), right)
    masked = xor_bytes(key, _key_mask)
    new_left = xor_bytes(des_ecb_encrypt(masked[:8], xor_bytes(register, masked[8:])), masked[8:])
    return new_left + new_right


def derive_transaction_key(ipek: bytes, ksn: bytes) -> bytes:
    """The current transaction key for ``ksn`` (before any variant)."""
    _check(ipek, ksn)
    counter = ksn_counter(ksn)
    if counter == 0 or bin(counter).count("1") > counter_one_bits_max:
        raise DukptError("a KSN counter is 1..2^21-1 with at most 10 one bits")
    base = int.from_bytes(ksn[2:], "big") & ~counter_mask
    key = ipek
    for bit in range(counter_bits - 1, -1, -1):
        if counter & (1 << bit):
            base |= 1 << bit
            key = _non_reversible(key, base.to_bytes(8, "big"))
    return key


def derive_pin_key(bdk: bytes, ksn: bytes) -> bytes:
    """PIN encryption key (transaction key XOR the PIN variant)."""
    return xor_bytes(derive_transaction_key(derive_ipek(bdk, ksn), ksn), pin_variant)


def derive_mac_request_key(bdk: bytes, ksn: bytes) -> bytes:
    """MAC key for request messages."""
    return xor_bytes(derive_transaction_key(derive_ipek(bdk, ksn), ksn), mac_request_variant)


def derive_mac_response_key(bdk: bytes, ksn: bytes) -> bytes:
    """MAC key for response messages."""
    return xor_bytes(derive_transaction_key(derive_ipek(bdk, ksn), ksn), mac_response_variant)
