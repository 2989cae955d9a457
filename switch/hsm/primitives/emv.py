"""EMV application cryptograms on clear keys (EMV 4.4 Book 2; ATM_HOST_SPEC section 11).

The hazardous layer of chip-card support: every function takes and returns clear
keys, so the switch reaches them only through ``SoftwareHsm`` (the IMK-AC stays
an LMK handle there); the chip-card emulator on the terminal side, which holds
its own card keys, imports them directly.

* ICC master key, Book 2 A1.4.1 option A: Y = rightmost 16 digits of PAN || PSN,
  left-filled with ``0``, as 8 BCD bytes; MK = TDES(IMK, Y) || TDES(IMK, Y xor FF..FF).
* Common session key, Book 2 A1.3.1: R = ATC || 00 00 00 00 00 00;
  SK = TDES(MK, R with byte 3 = F0) || TDES(MK, R with byte 3 = 0F).
* Application cryptogram (ARQC, TC, AAC), Book 2 A1.2.1: ISO 9797-1 MAC algorithm 3
  with padding method 2 (80 then 00s) under SK.
* ARPC method 1 (Book 2 8.2.1): TDES(SK, ARQC xor (ARC || 00..00)), 8 bytes.
* ARPC method 2 (Book 2 8.2.2): ISO 9797-1 alg 3, padding 2, over ARQC || CSU ||
  proprietary authentication data, the leftmost 4 bytes. Offered as a primitive only:
  section 11 answers with method 1.

DES parity bits are ignored (the cipher never reads them); derived keys are
returned as computed, without parity adjustment, so compare them through a
cipher (or a KCV), not byte for byte with a tool that adjusts parity.
"""

from __future__ import annotations

from switch.hsm.primitives.des import tdes_ecb_encrypt, xor_bytes
from switch.hsm.primitives.errors import EmvDataError, KeyLengthError
from switch.hsm.primitives.mac import pad_iso9797_method2, retail_mac_padded

emv_key_bytes = 16  # double-length TDES throughout (section 11)
pan_digits_min = 12
pan_digits_max = 19
psn_digits = 2
atc_max = 0xFFFF  # 9F36 is 2 bytes, unsigned
cryptogram_bytes = 8
arc_bytes = 2
csu_bytes = 4
proprietary_auth_data_bytes_max = 8
arpc_method2_bytes = 4
_y_digits = 16
_all_ones = b"\xff" * 8


def _check_key(key: bytes, what: str) -> None:
    if len(key) != emv_key_bytes:
        raise KeyLengthError(f"an EMV {what} is a double-length TDES key (16 bytes)")


def _digits(value: str, low: int, high: int, what: str) -> str:
    if not (low <= len(value) <= high) or not value.isascii() or not value.isdigit():
        raise EmvDataError(f"{what} must be {low}-{high} decimal digits")
    return value


def derive_icc_master_key_option_a(imk: bytes, pan: str, psn: str) -> bytes:
    """MK-AC of one card from the issuer master key (Book 2 A1.4.1, option A)."""
    _check_key(imk, "issuer master key")
    pan = _digits(pan, pan_digits_min, pan_digits_max, "a PAN")
    psn = _digits(psn, psn_digits, psn_digits, "a PAN sequence number")
    y = bytes.fromhex((pan + psn)[-_y_digits:].zfill(_y_digits))
    return tdes_ecb_encrypt(imk, y) + tdes_ecb_encrypt(imk, xor_bytes(y, _all_ones))


def atc_diversification(atc: int) -> bytes:
    """R for the AC session key: the 2-byte ATC then six zero bytes (section 11 step 2)."""
    if not 0 <= atc <= atc_max:
        raise EmvDataError("an ATC is 0-65535 (2 bytes)")
    return atc.to_bytes(2, "big") + bytes(6)


def derive_common_session_key(master_key: bytes, r: bytes) -> bytes:
    """SK from an ICC master key and an 8-byte diversification value R (Book 2 A1.3.1)."""
    _check_key(master_key, "ICC master key")
    if len(r) != 8:
        raise EmvDataError("the session key diversification value R is 8 bytes")
    left = r[:2] + b"\xf0" + r[3:]
    right = r[:2] + b"\x0f" + r[3:]
    return tdes_ecb_encrypt(master_key, left) + tdes_ecb_encrypt(master_key, right)


def application_cryptogram(session_key: bytes, data: bytes) -> bytes:
    """ARQC / TC / AAC: ISO 9797-1 MAC algorithm 3, padding method 2, 8 bytes."""
    _check_key(session_key, "session key")
    return retail_mac_padded(session_key, pad_iso9797_method2(data))


def arpc_method1(session_key: bytes, arqc: bytes, arc: bytes) -> bytes:
    """ARPC method 1 (Book 2 8.2.1): TDES(SK, ARQC xor (ARC || 000000000000))."""
    _check_key(session_key, "session key")
    if len(arqc) != cryptogram_bytes or len(arc) != arc_bytes:
        raise EmvDataError("ARPC method 1 takes an 8-byte ARQC and a 2-byte ARC")
    return tdes_ecb_encrypt(session_key, xor_bytes(arqc, arc + bytes(6)))


def arpc_method2(session_key: bytes, arqc: bytes, csu: bytes, proprietary: bytes = b"") -> bytes:
    """ARPC method 2 (Book 2 8.2.2): 4 bytes of MAC alg 3 (padding 2) over ARQC||CSU||PAD."""
    _check_key(session_key, "session key")
    if len(arqc) != cryptogram_bytes or len(csu) != csu_bytes:
        raise EmvDataError("ARPC method 2 takes an 8-byte ARQC and a 4-byte CSU")
    if len(proprietary) > proprietary_auth_data_bytes_max:
        raise EmvDataError("proprietary authentication data is at most 8 bytes")
    mac = retail_mac_padded(session_key, pad_iso9797_method2(arqc + csu + proprietary))
    return mac[:arpc_method2_bytes]


def session_key_for_atc(imk: bytes, pan: str, psn: str, atc: int) -> bytes:
    """SK-AC of one transaction: option A master key, then the common session key."""
    master_key = derive_icc_master_key_option_a(imk, pan, psn)
    return derive_common_session_key(master_key, atc_diversification(atc))
