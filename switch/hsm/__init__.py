"""Software HSM: the only place in the switch where clear PINs and clear keys exist.

Public API: ``SoftwareHsm`` (implements the ``Hsm`` protocol over LMK key
handles), ``open_hsm(config)``, ``PinVerificationData`` and the typed errors.
``switch.hsm.primitives`` holds the pure algorithms on clear keys for the
terminal side. See docs/hsm.md.
"""

from __future__ import annotations

from switch.config import Config
from switch.hsm.errors import (
    CardDataError,
    CryptogramFailed,
    CvvVerificationFailed,
    HsmError,
    KeyHandleError,
    KeyMaterialError,
    KeyUsageError,
    LmkError,
    MacVerificationFailed,
    PinFormatRefused,
    PinPolicyError,
    PinVerificationFailed,
    TestModeRequired,
)
from switch.hsm.lmk import ensure_lmk, load_lmk
from switch.hsm.protocol import Hsm
from switch.hsm.results import KeyComponents, KeyInfo, PinMailer, TerminalWorkingKeys
from switch.hsm.software import SoftwareHsm
from switch.hsm.verification_data import PinVerificationData


def open_hsm(config: Config) -> SoftwareHsm:
    """The HSM for this configuration (LMK from env or data dir; ``LmkError`` if absent)."""
    return SoftwareHsm(
        load_lmk(config),
        test_mode=config.hsm.test_mode,
        allow_weaker_pin_format=config.hsm.allow_weaker_pin_format,
    )


__all__ = [
    "CardDataError",
    "CryptogramFailed",
    "CvvVerificationFailed",
    "Hsm",
    "HsmError",
    "KeyComponents",
    "KeyHandleError",
    "KeyInfo",
    "KeyMaterialError",
    "KeyUsageError",
    "LmkError",
    "MacVerificationFailed",
    "PinFormatRefused",
    "PinMailer",
    "PinPolicyError",
    "PinVerificationData",
    "PinVerificationFailed",
    "SoftwareHsm",
    "TerminalWorkingKeys",
    "TestModeRequired",
    "ensure_lmk",
    "load_lmk",
    "open_hsm",
]
