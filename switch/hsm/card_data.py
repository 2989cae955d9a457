"""Card data at rest: a keyed lookup hash and authenticated encryption of the PAN.

Both keys are derived from the LMK with HKDF-SHA256 under distinct labels, so
they never need storing and rotate with the LMK. The lookup hash (HMAC-SHA256)
lets the cards table be searched by PAN without holding it; the token
(AES-256-GCM, random nonce) lets an operator tool recover it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from switch.hsm.errors import CardDataError

pan_lookup_label = b"atm-switch/pan-lookup-hmac/v1"
pan_encryption_label = b"atm-switch/pan-encryption-aes-gcm/v1"
pan_token_prefix = "v1."  # noqa: S105 (a format tag, not a secret)
gcm_nonce_bytes = 12
pan_digits_max = 19


def _derive(lmk: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(lmk)


def _check_pan(pan: str) -> None:
    if not (1 <= len(pan) <= pan_digits_max) or not pan.isascii() or not pan.isdigit():
        raise CardDataError("a PAN is 1 to 19 decimal digits")


class CardDataProtector:
    """Hashes and encrypts PANs with keys derived from the LMK."""

    def __init__(self, lmk: bytes) -> None:
        self._lookup_key = _derive(lmk, pan_lookup_label)
        self._aead = AESGCM(_derive(lmk, pan_encryption_label))

    def lookup_hash(self, pan: str) -> str:
        """64 hex digits; equal PANs give equal hashes under one LMK."""
        _check_pan(pan)
        return hmac.new(self._lookup_key, pan.encode("ascii"), sha256).hexdigest()

    def encrypt(self, pan: str) -> str:
        """A printable token; each call gives a different token for the same PAN."""
        _check_pan(pan)
        nonce = secrets.token_bytes(gcm_nonce_bytes)
        sealed = self._aead.encrypt(nonce, pan.encode("ascii"), pan_token_prefix.encode())
        return pan_token_prefix + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The PAN inside a token, or ``CardDataError`` (altered, foreign or malformed)."""
        if not isinstance(token, str) or not token.startswith(pan_token_prefix):
            raise CardDataError("not a PAN token")
        try:
            raw = base64.urlsafe_b64decode(token[len(pan_token_prefix) :].encode("ascii"))
            nonce, sealed = raw[:gcm_nonce_bytes], raw[gcm_nonce_bytes:]
            pan = self._aead.decrypt(nonce, sealed, pan_token_prefix.encode()).decode("ascii")
        except (binascii.Error, ValueError, InvalidTag, UnicodeError):
            raise CardDataError("PAN token is malformed or not made under this LMK") from None
        _check_pan(pan)
        return pan
