"""PIN operations on handles: recover a PIN inside the HSM, check it, re-encrypt it.

Everything here is synchronous and module-private to ``switch.hsm``: the clear
PIN exists only in local variables of these functions and never leaves the
package. ``SoftwareHsm`` is the public face.
"""

from __future__ import annotations

import hmac

from switch.hsm.errors import KeyUsageError, PinFormatRefused
from switch.hsm.key_usage import MODES_DECRYPT, MODES_DERIVE, MODES_ENCRYPT, require
from switch.hsm.keystore import ClearKey, KeyStore
from switch.hsm.primitives import dukpt_aes, dukpt_tdes
from switch.hsm.primitives.errors import PinFormatError
from switch.hsm.primitives.pin_blocks import (
    decrypt_pin_block,
    encrypt_pin_block,
    supported_formats,
)
from switch.hsm.primitives.pin_verification import (
    ibm3624_offset,
    ibm3624_validation_data,
    visa_pvv,
)
from switch.hsm.verification_data import PinVerificationData

# Strength order for translation: format 1 has no PAN binding (weakest), 4 is AES.
format_strength = {1: 0, 0: 1, 3: 2, 4: 3}
_usage_p0 = frozenset({"P0"})
_usage_b0 = frozenset({"B0"})


def check_format(fmt: int) -> None:
    if fmt not in supported_formats:
        raise PinFormatRefused(f"PIN block format {fmt} is not supported (0, 1, 3, 4)")


def _check_key_fits_format(key: ClearKey, fmt: int) -> None:
    needs = "A" if fmt == 4 else "T"
    if key.header.algorithm != needs:
        raise KeyUsageError(
            f"PIN block format {fmt} needs an {'AES' if needs == 'A' else 'TDES'} key"
        )


def _block_bytes(block_hex: str, fmt: int) -> bytes:
    expected = 32 if fmt == 4 else 16
    if len(block_hex) != expected:
        raise PinFormatError(f"a format {fmt} PIN block is {expected} hex digits")
    try:
        return bytes.fromhex(block_hex)
    except ValueError:
        raise PinFormatError("a PIN block is hexadecimal") from None


def recover_pin(store: KeyStore, tpk: str, block_hex: str, pan: str, fmt: int) -> str:
    """Decrypt and decode a PIN block under a PIN key (raises on any problem)."""
    check_format(fmt)
    key = store.unwrap(tpk)
    require(key.header, _usage_p0, MODES_DECRYPT, "PIN decryption")
    _check_key_fits_format(key, fmt)
    return decrypt_pin_block(key.key, _block_bytes(block_hex, fmt), pan, fmt)


def recover_pin_dukpt(
    store: KeyStore, bdk: str, ksn_hex: str, block_hex: str, pan: str, fmt: int
) -> str:
    """Decrypt a PIN block under the DUKPT key of ``ksn`` (TDES: 20 hex KSN, AES: 24)."""
    check_format(fmt)
    key = store.unwrap(bdk)
    require(key.header, _usage_b0, MODES_DERIVE, "DUKPT PIN decryption")
    try:
        ksn = bytes.fromhex(ksn_hex)
    except ValueError:
        raise PinFormatError("a KSN is hexadecimal") from None
    if key.header.algorithm == "T":
        if fmt == 4:
            raise KeyUsageError("a TDES BDK protects 8-byte PIN blocks (formats 0, 1, 3)")
        pin_key = dukpt_tdes.derive_pin_key(key.key, ksn)
        return decrypt_pin_block(pin_key, _block_bytes(block_hex, fmt), pan, fmt)
    if fmt != 4:
        raise KeyUsageError("an AES BDK protects format 4 PIN blocks")
    pin_key = dukpt_aes.derive_working_key(key.key, ksn, dukpt_aes.KeyUsage.PIN_ENCRYPTION)
    return decrypt_pin_block(pin_key, _block_bytes(block_hex, fmt), pan, fmt)


def encrypt_pin(store: KeyStore, key_handle: str, pin: str, pan: str, fmt: int) -> str:
    """Encrypt a PIN as a new PIN block under a PIN key (for translation)."""
    check_format(fmt)
    key = store.unwrap(key_handle)
    require(key.header, _usage_p0, MODES_ENCRYPT, "PIN encryption")
    _check_key_fits_format(key, fmt)
    return encrypt_pin_block(key.key, pin, pan, fmt).hex().upper()


def check_translation(source_fmt: int, target_fmt: int, allow_weaker: bool) -> None:
    """Refuse translating into a weaker format unless configured (ISO 9564-1 rules)."""
    check_format(source_fmt)
    check_format(target_fmt)
    if format_strength[target_fmt] < format_strength[source_fmt] and not allow_weaker:
        raise PinFormatRefused(
            f"translating a format {source_fmt} PIN block into weaker format {target_fmt} "
            "is refused (hsm.allow_weaker_pin_format)"
        )


def verification_value(
    store: KeyStore,
    pvk_handle: str,
    pan: str,
    pin: str,
    method: str,
    pvki: str | None,
    modes: frozenset[str],
) -> str:
    """The offset or PVV of ``pin`` under the PVK, after checking the PVK's usage."""
    pvk = store.unwrap(pvk_handle)
    if method == "ibm3624":
        require(pvk.header, frozenset({"V1"}), modes, "IBM 3624 PIN verification")
        return ibm3624_offset(pvk.key, pin, ibm3624_validation_data(pan))
    if method == "visa_pvv":
        require(pvk.header, frozenset({"V2"}), modes, "Visa PVV PIN verification")
        return visa_pvv(pvk.key, pan, pin, pvki or "0")
    raise KeyUsageError(f"unknown PIN verification method {method!r}")


def pin_matches(
    store: KeyStore, pin: str, pan: str, data: PinVerificationData, modes: frozenset[str]
) -> bool:
    """Constant-time check of a recovered PIN against the card's verification data."""
    if data.method == "ibm3624" and len(pin) != len(data.value):
        expected = ""
    else:
        expected = verification_value(store, data.pvk, pan, pin, data.method, data.pvki, modes)
    return hmac.compare_digest(expected.encode(), data.value.encode())
