"""The terminal's side of spec 7: its clear keys, the 0810 key exchange, PIN blocks and MACs.

A real ATM keeps these in its encrypting PIN pad; the simulator, the tests and the load
generator keep them here. The switch never sees any of them in clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ops.masking import masked_repr
from switch.hsm.primitives import (
    KeyBlockError,
    aes_cmac,
    encrypt_pin_block,
    retail_mac,
    tr31_unwrap,
)
from switch.protocol.field48 import decode_tags
from switch.protocol.message import mac_input_of, mac_of

mac_chars = 16
# Spec 7: what the key blocks of a key exchange must say.
EXPECTED_USAGE = {"tdes": ("P0", "M3", "B"), "aes": ("P0", "M6", "D")}


class KeyExchangeError(ValueError):
    """The 0810 was declined or its key blocks are not what spec 7 prescribes."""


class ResponseMacError(ValueError):
    """A response's MAC is missing or does not verify under the TAK."""


@dataclass(frozen=True, slots=True)
class TerminalKeySet:
    """Clear keys held by one terminal: TMK from installation, TPK/TAK from key exchange."""

    __repr__ = masked_repr  # PAN 6+4, secrets wiped (issue 11 item 5)

    tmk: bytes
    tpk: bytes | None = None
    tak: bytes | None = None
    key_type: str = "tdes"

    @classmethod
    def from_tmk_hex(cls, tmk_hex: str, key_type: str = "tdes") -> TerminalKeySet:
        return cls(tmk=bytes.fromhex(tmk_hex), key_type=key_type)

    def mac(self, data: bytes) -> str:
        """Spec 8: retail MAC (TDES) or AES-CMAC first 8 bytes, as 16 upper-case hex."""
        if self.tak is None:
            raise ResponseMacError("no TAK: run a key exchange first")
        if self.key_type == "aes":
            return aes_cmac(self.tak, data)[:8].hex().upper()
        return retail_mac(self.tak, data).hex().upper()

    def pin_block(self, pin: str, pan: str) -> str:
        """Field 52: ISO 9564 format 0 under the TPK (TDES-ECB), 16 upper-case hex; for AES
        terminals the format 4 block for 48/PB, 32 upper-case hex (spec 7)."""
        if self.tpk is None:
            raise KeyExchangeError("no TPK: run a key exchange first")
        fmt = 4 if self.key_type == "aes" else 0
        return encrypt_pin_block(self.tpk, pin, pan, fmt).hex().upper()

    def verify_response_mac(self, raw: bytes) -> None:
        """Raise unless the last 16 characters are the MAC of what precedes them."""
        expected = self.mac(mac_input_of(raw))
        if mac_of(raw) != expected:
            raise ResponseMacError("response MAC does not verify")

    def after_key_exchange(self, response_fields: Mapping[str, str]) -> TerminalKeySet:
        """The keys after an 0810 (spec 5.1): unwrap 48/KP and 48/KM under the TMK."""
        if response_fields.get("39") != "00":
            raise KeyExchangeError(f"key exchange answered {response_fields.get('39')}")
        tags = decode_tags(response_fields.get("48", ""))
        if "KP" not in tags or "KM" not in tags:
            raise KeyExchangeError("0810 lacks 48/KP or 48/KM")
        tpk_usage, tak_usage, version = EXPECTED_USAGE[self.key_type]
        tpk = self._unwrap(tags["KP"], tpk_usage, "E", version)
        tak = self._unwrap(tags["KM"], tak_usage, "C", version)
        return replace(self, tpk=tpk, tak=tak)

    def _unwrap(self, block: str, usage: str, mode: str, version: str) -> bytes:
        try:
            header, key = tr31_unwrap(self.tmk, block)
        except KeyBlockError as exc:
            raise KeyExchangeError(f"key block does not unwrap under the TMK: {exc}") from exc
        if (header.version, header.key_usage, header.mode_of_use) != (version, usage, mode):
            raise KeyExchangeError(
                f"key block is {header.version}/{header.key_usage}/{header.mode_of_use},"
                f" expected {version}/{usage}/{mode}"
            )
        return key
