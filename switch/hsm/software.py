"""``SoftwareHsm``: the payment-HSM API of the switch, over keys held as LMK handles.

Methods are ``async`` so a network HSM (payShield-like) can replace this class
behind the same ``Hsm`` protocol; here they compute in place (each call is a
few microseconds, too short to be worth a thread). Nothing returned is a clear
PIN or a clear key, except the documented exceptions: the components of a
newly generated key (``generate_key_components``) and, only in test mode, the
PIN of a newly issued card (``issue_pin_mailer_test_mode``).

The key-management half of the API is ``software_keys.py`` (the base class); this module
holds the operations that use keys: PINs, MACs, CVVs, EMV cryptograms and card data.
"""

from __future__ import annotations

import hmac
import secrets

from switch.hsm import emv_ops, pin_ops
from switch.hsm.card_data import CardDataProtector
from switch.hsm.errors import (
    CvvVerificationFailed,
    HsmError,
    KeyUsageError,
    MacVerificationFailed,
    PinPolicyError,
    PinVerificationFailed,
)
from switch.hsm.key_usage import (
    MODES_GENERATE,
    MODES_VERIFY,
    require,
)
from switch.hsm.primitives.cvv import cvv as cvv_value
from switch.hsm.primitives.errors import PrimitiveError
from switch.hsm.primitives.mac import aes_cmac, retail_mac
from switch.hsm.primitives.pin_blocks import check_pin
from switch.hsm.results import KeyComponents, KeyInfo, PinMailer, TerminalWorkingKeys
from switch.hsm.software_keys import SoftwareKeyManagement
from switch.hsm.verification_data import PinVerificationData

mac_hex_chars = 16
_usage_mac = frozenset({"M3", "M6"})
_usage_cvk = frozenset({"C0"})
_modes_verify_pin = MODES_VERIFY
pin_mailer_digits_default = 4


class SoftwareHsm(SoftwareKeyManagement):
    """A software implementation of the ``switch.hsm.Hsm`` protocol.

    Key management (make, form, import, export keys) is inherited from
    ``SoftwareKeyManagement`` (``software_keys.py``); this class adds what uses the keys."""

    def __init__(
        self, lmk: bytes, *, test_mode: bool = False, allow_weaker_pin_format: bool = False
    ) -> None:
        super().__init__(lmk, test_mode=test_mode)
        self._cards = CardDataProtector(lmk)
        self.allow_weaker_pin_format = allow_weaker_pin_format

    # -- PINs -----------------------------------------------------------------------------

    async def verify_pin(
        self,
        *,
        tpk: str,
        pin_block: str,
        pan: str,
        verification: PinVerificationData,
        pin_block_format: int = 0,
    ) -> None:
        """Raise ``PinVerificationFailed`` unless the PIN block holds the card's PIN."""
        try:
            pin = pin_ops.recover_pin(self._store, tpk, pin_block, pan, pin_block_format)
            ok = pin_ops.pin_matches(self._store, pin, pan, verification, _modes_verify_pin)
        except PrimitiveError:
            raise PinVerificationFailed("PIN verification failed") from None
        if not ok:
            raise PinVerificationFailed("PIN verification failed")

    async def verify_pin_dukpt(
        self,
        *,
        bdk: str,
        ksn: str,
        pin_block: str,
        pan: str,
        verification: PinVerificationData,
        pin_block_format: int = 0,
    ) -> None:
        """Like ``verify_pin`` for a PIN block under a DUKPT key (TDES X9.24-1 / AES X9.24-3)."""
        try:
            pin = pin_ops.recover_pin_dukpt(self._store, bdk, ksn, pin_block, pan, pin_block_format)
            ok = pin_ops.pin_matches(self._store, pin, pan, verification, _modes_verify_pin)
        except PrimitiveError:
            raise PinVerificationFailed("PIN verification failed") from None
        if not ok:
            raise PinVerificationFailed("PIN verification failed")

    async def change_pin(
        self,
        *,
        tpk: str,
        old_pin_block: str,
        new_pin_block: str,
        pan: str,
        verification: PinVerificationData,
        pin_block_format: int = 0,
    ) -> PinVerificationData:
        """Verify the old PIN, then return verification data (same PVK) for the new PIN."""
        await self.verify_pin(
            tpk=tpk,
            pin_block=old_pin_block,
            pan=pan,
            verification=verification,
            pin_block_format=pin_block_format,
        )
        try:
            new_pin = pin_ops.recover_pin(self._store, tpk, new_pin_block, pan, pin_block_format)
        except PrimitiveError:
            raise PinPolicyError("the new PIN block is malformed or breaks the PIN rules") from None
        return self._verification_data(
            verification.pvk, pan, new_pin, verification.method, verification.pvki
        )

    async def translate_pin(
        self,
        *,
        source_key: str,
        target_key: str,
        pin_block: str,
        pan: str,
        source_format: int = 0,
        target_format: int = 0,
    ) -> str:
        """Re-encrypt a PIN block under another PIN key / format (never into a weaker format)."""
        pin_ops.check_translation(source_format, target_format, self.allow_weaker_pin_format)
        try:
            pin = pin_ops.recover_pin(self._store, source_key, pin_block, pan, source_format)
            return pin_ops.encrypt_pin(self._store, target_key, pin, pan, target_format)
        except PrimitiveError:
            raise PinVerificationFailed("the PIN block could not be translated") from None

    async def translate_pin_dukpt(
        self,
        *,
        bdk: str,
        ksn: str,
        target_key: str,
        pin_block: str,
        pan: str,
        source_format: int = 0,
        target_format: int = 0,
    ) -> str:
        """Re-encrypt a DUKPT-protected PIN block under a PIN key (e.g. a network ZPK)."""
        pin_ops.check_translation(source_format, target_format, self.allow_weaker_pin_format)
        try:
            pin = pin_ops.recover_pin_dukpt(self._store, bdk, ksn, pin_block, pan, source_format)
            return pin_ops.encrypt_pin(self._store, target_key, pin, pan, target_format)
        except PrimitiveError:
            raise PinVerificationFailed("the PIN block could not be translated") from None

    def _verification_data(
        self, pvk: str, pan: str, pin: str, method: str, pvki: str | None
    ) -> PinVerificationData:
        try:
            check_pin(pin)
            value = pin_ops.verification_value(
                self._store, pvk, pan, pin, method, pvki, MODES_GENERATE
            )
        except PrimitiveError as exc:
            raise PinPolicyError(str(exc)) from None
        return PinVerificationData(method, pvk, value, pvki if method == "visa_pvv" else None)

    async def pin_verification_data_test_mode(
        self, *, pvk: str, pan: str, pin: str, method: str = "ibm3624", pvki: str = "1"
    ) -> PinVerificationData:
        """Offset/PVV for a clear PIN from a fixture file (refused unless test mode)."""
        self._require_test_mode("computing verification data from a clear PIN")
        return self._verification_data(pvk, pan, pin, method, pvki)

    async def issue_pin_mailer_test_mode(
        self,
        *,
        pvk: str,
        pan: str,
        method: str = "ibm3624",
        pvki: str = "1",
        pin_digits: int = pin_mailer_digits_default,
    ) -> PinMailer:
        """A random PIN for a new card and its verification data (test mode only)."""
        self._require_test_mode("printing a PIN mailer")
        pin = "".join(secrets.choice("0123456789") for _ in range(pin_digits))
        return PinMailer(pin, self._verification_data(pvk, pan, pin, method, pvki))

    # -- MAC ------------------------------------------------------------------------------

    def _mac(self, tak: str, data: bytes, modes: frozenset[str], operation: str) -> str:
        key = self._unwrap(tak)
        require(key.header, _usage_mac, modes, operation)
        if key.header.key_usage == "M3":
            return retail_mac(key.key, data).hex().upper()
        return aes_cmac(key.key, data)[:8].hex().upper()

    async def generate_mac(self, tak: str, data: bytes) -> str:
        """16 hex: M3 -> ISO 9797-1 alg 3 (padding 1); M6 -> AES-CMAC, leftmost 8 bytes."""
        return self._mac(tak, data, MODES_GENERATE, "MAC generation")

    async def verify_mac(self, tak: str, data: bytes, mac_hex: str) -> None:
        """Raise ``MacVerificationFailed`` unless ``mac_hex`` is the MAC of ``data``."""
        expected = self._mac(tak, data, MODES_VERIFY, "MAC verification")
        given = mac_hex.upper().encode("ascii", "replace") if isinstance(mac_hex, str) else b""
        if not hmac.compare_digest(expected.encode("ascii"), given):
            raise MacVerificationFailed("MAC verification failed")

    # -- CVV ------------------------------------------------------------------------------

    def _cvv(
        self, cvk: str, pan: str, expiry: str, service_code: str, modes: frozenset[str]
    ) -> str:
        key = self._unwrap(cvk)
        require(key.header, _usage_cvk, modes, "CVV")
        if key.header.algorithm != "T" or len(key.key) != 16:
            raise KeyUsageError("a CVK is a double-length TDES key")
        try:
            return cvv_value(key.key, pan, expiry, service_code)
        except PrimitiveError as exc:
            raise HsmError(f"CVV input is invalid: {exc}") from None

    async def generate_cvv(self, *, cvk: str, pan: str, expiry: str, service_code: str) -> str:
        """The 3-digit CVV for card issuing."""
        return self._cvv(cvk, pan, expiry, service_code, MODES_GENERATE)

    async def verify_cvv(
        self, *, cvk: str, pan: str, expiry: str, service_code: str, cvv: str
    ) -> None:
        """Raise ``CvvVerificationFailed`` unless ``cvv`` matches."""
        expected = self._cvv(cvk, pan, expiry, service_code, MODES_VERIFY)
        if not hmac.compare_digest(expected.encode(), str(cvv).encode("ascii", "replace")):
            raise CvvVerificationFailed("CVV verification failed")

    # -- EMV chip cryptograms (ATM_HOST_SPEC section 11; switch/hsm/emv_ops.py) -------------

    async def verify_arqc(
        self, *, imk_ac: str, pan: str, psn: str, atc: int, data: bytes, arqc: bytes
    ) -> None:
        """Raise ``CryptogramFailed`` unless ``arqc`` is the card's ARQC over ``data``.

        ``imk_ac``: an ``E0`` handle; MK-AC by option A from ``pan`` (all digits) and
        ``psn`` (2 digits), SK-AC by the common session key from ``atc`` (0-65535).
        """
        emv_ops.verify_arqc(self._store, imk_ac, pan, psn, atc, data, arqc)

    async def generate_arpc(
        self,
        *,
        imk_ac: str,
        pan: str,
        psn: str,
        atc: int,
        data: bytes,
        arqc: bytes,
        response_code: str,
    ) -> bytes:
        """ARPC method 1 (8 bytes) over the ARC of ``response_code`` (``"00"`` -> 3030).

        The ARQC is verified again first (``CryptogramFailed`` otherwise): an ARPC is
        never issued for a cryptogram the issuer has not checked.
        """
        return emv_ops.arpc_for_verified_arqc(
            self._store, imk_ac, pan, psn, atc, data, arqc, response_code
        )

    # -- card data at rest ------------------------------------------------------------------

    async def pan_lookup_hash(self, pan: str) -> str:
        """Keyed hash to find a card by PAN without storing the PAN (HMAC-SHA256, 64 hex)."""
        return self._cards.lookup_hash(pan)

    async def encrypt_pan(self, pan: str) -> str:
        """AES-GCM token of a PAN under an LMK-derived key."""
        return self._cards.encrypt(pan)

    async def decrypt_pan(self, token: str) -> str:
        """The PAN inside a token made by ``encrypt_pan`` under this LMK."""
        return self._cards.decrypt(token)


__all__ = ["KeyComponents", "KeyInfo", "PinMailer", "SoftwareHsm", "TerminalWorkingKeys"]
