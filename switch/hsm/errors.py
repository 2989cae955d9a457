"""Typed errors of the HSM API. Security checks raise; callers cannot ignore them.

``PinVerificationFailed`` and ``MacVerificationFailed`` never say which internal
check failed (bad key, malformed block, wrong PIN look the same from outside).
"""

from __future__ import annotations


class HsmError(Exception):
    """Base class of every error raised by ``switch.hsm``."""


class LmkError(HsmError):
    """The LMK is missing, malformed or cannot be written."""


class KeyHandleError(HsmError):
    """A key handle is malformed or not wrapped under this HSM's LMK."""


class KeyUsageError(HsmError):
    """A key's usage, algorithm or mode of use does not allow the operation."""


class KeyMaterialError(HsmError):
    """Clear components or key lengths are invalid (wrong length, not hex, KCV mismatch)."""


class TestModeRequired(HsmError):
    """The operation handles clear secrets and is allowed only with ``hsm.test_mode``."""

    __test__ = False  # not a pytest test class


class PinVerificationFailed(HsmError):
    """The PIN is wrong or the PIN block could not be decrypted and decoded."""


class MacVerificationFailed(HsmError):
    """The MAC does not match the data under the given key."""


class CryptogramFailed(HsmError):
    """An EMV application cryptogram (ARQC) does not verify under the card's derived key.

    Like the PIN and MAC failures, it never says why (wrong key, PAN, PSN, ATC or data).
    """


class CvvVerificationFailed(HsmError):
    """The card verification value does not match."""


class PinFormatRefused(HsmError):
    """A PIN block format is unsupported, or translation would weaken the format."""


class PinPolicyError(HsmError):
    """A new PIN breaks the PIN rules (length 4-12, decimal)."""


class CardDataError(HsmError):
    """An encrypted PAN token is malformed or was not made under this LMK."""
