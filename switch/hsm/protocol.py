"""The ``Hsm`` protocol: what the rest of the switch may ask of an HSM.

``SoftwareHsm`` implements it; a network HSM client can implement it too.
Every method is async. Keys are handles (TR-31 blocks under the LMK).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from switch.hsm.verification_data import PinVerificationData

if TYPE_CHECKING:
    from switch.hsm.results import KeyComponents, KeyInfo, TerminalWorkingKeys


class Hsm(Protocol):
    async def generate_key(
        self,
        usage: str,
        *,
        algorithm: str = "T",
        length_bytes: int = 16,
        exportable: bool = True,
        mode_of_use: str | None = None,
    ) -> str: ...

    async def key_check_value(self, handle: str) -> str: ...

    async def key_info(self, handle: str) -> KeyInfo: ...

    async def form_key_from_components(
        self,
        components: Sequence[str],
        *,
        usage: str,
        algorithm: str = "T",
        component_kcvs: Sequence[str] | None = None,
        exportable: bool = True,
    ) -> str: ...

    async def generate_key_components(
        self,
        usage: str,
        *,
        algorithm: str = "T",
        count: int = 2,
        length_bytes: int = 16,
        exportable: bool = False,
    ) -> KeyComponents: ...

    async def export_key(
        self, handle: str, *, kek: str, mode_of_use: str | None = None, exportability: str = "N"
    ) -> str: ...

    async def import_key(self, block: str, *, kek: str) -> str: ...

    async def create_terminal_master_key(self, key_type: str = "tdes") -> KeyComponents: ...

    async def issue_terminal_working_keys(self, tmk: str) -> TerminalWorkingKeys: ...

    async def verify_pin(
        self,
        *,
        tpk: str,
        pin_block: str,
        pan: str,
        verification: PinVerificationData,
        pin_block_format: int = 0,
    ) -> None: ...

    async def change_pin(
        self,
        *,
        tpk: str,
        old_pin_block: str,
        new_pin_block: str,
        pan: str,
        verification: PinVerificationData,
        pin_block_format: int = 0,
    ) -> PinVerificationData: ...

    async def translate_pin(
        self,
        *,
        source_key: str,
        target_key: str,
        pin_block: str,
        pan: str,
        source_format: int = 0,
        target_format: int = 0,
    ) -> str: ...

    async def generate_mac(self, tak: str, data: bytes) -> str: ...

    async def verify_mac(self, tak: str, data: bytes, mac_hex: str) -> None: ...

    async def generate_cvv(self, *, cvk: str, pan: str, expiry: str, service_code: str) -> str: ...

    async def verify_cvv(
        self, *, cvk: str, pan: str, expiry: str, service_code: str, cvv: str
    ) -> None: ...

    async def verify_arqc(
        self, *, imk_ac: str, pan: str, psn: str, atc: int, data: bytes, arqc: bytes
    ) -> None: ...

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
    ) -> bytes: ...

    async def pan_lookup_hash(self, pan: str) -> str: ...

    async def encrypt_pan(self, pan: str) -> str: ...

    async def decrypt_pan(self, token: str) -> str: ...
