"""Card Verification Value (CVV/CVC, also iCVV and CVV2 with other inputs).

Data = PAN + expiry (YYMM) + service code, right-padded with zeros to 32
digits. Encrypt the first 16 under key A (single DES), XOR the second 16,
encrypt under the double-length CVK (A, B) as TDES; collect decimal digits
of the result, then A-F as 0-5, keep 3.
"""

from __future__ import annotations

from switch.hsm.primitives.des import des_ecb_encrypt, tdes_ecb_encrypt, xor_bytes
from switch.hsm.primitives.errors import KeyLengthError, PinFormatError

cvv_digits = 3


def cvv(cvk: bytes, pan: str, expiry_yymm: str, service_code: str) -> str:
    """Three-digit CVV under a double-length CVK."""
    if len(cvk) != 16:
        raise KeyLengthError("a CVK is a double-length (16-byte) TDES key")
    data = pan + expiry_yymm + service_code
    if not data.isascii() or not data.isdigit() or len(data) > 32:
        raise PinFormatError("CVV input is decimal PAN + YYMM + service code (<= 32 digits)")
    if len(expiry_yymm) != 4 or len(service_code) != 3:
        raise PinFormatError("CVV needs a 4-digit expiry and a 3-digit service code")
    block = bytes.fromhex(data.ljust(32, "0"))
    step = xor_bytes(des_ecb_encrypt(cvk[:8], block[:8]), block[8:])
    result = tdes_ecb_encrypt(cvk, step).hex().upper()
    digits = [c for c in result if c.isdigit()]
    digits += [str(int(c, 16) - 10) for c in result if not c.isdigit()]
    return "".join(digits[:cvv_digits])
