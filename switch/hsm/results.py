"""Result types of the HSM API: handles, check values and blocks -- clear values hidden in repr."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from switch.hsm.verification_data import PinVerificationData


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown about a key: its attributes and check value, never the key."""

    usage: str
    algorithm: str
    mode_of_use: str
    exportability: str
    length_bytes: int
    kcv: str


@dataclass(frozen=True, slots=True, repr=False)
class KeyComponents:
    """A new key as LMK handle plus its clear components (shown once, at creation)."""

    handle: str
    components: list[tuple[str, str]]
    kcv: str

    def __repr__(self) -> str:
        return f"KeyComponents(kcv={self.kcv}, components=<{len(self.components)} hidden>)"

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as ``handle, components, kcv`` (the interface's tuple form)."""
        return iter((self.handle, self.components, self.kcv))


@dataclass(frozen=True, slots=True)
class TerminalWorkingKeys:
    """Fresh TPK and TAK: handles for the switch, TR-31 blocks under the TMK for 48/KP, 48/KM."""

    tpk: str
    tak: str
    tpk_block: str
    tak_block: str
    tpk_kcv: str
    tak_kcv: str


@dataclass(frozen=True, slots=True, repr=False)
class PinMailer:
    """Test mode only: the clear PIN of a newly issued card and its verification data."""

    pin: str
    verification: PinVerificationData

    def __repr__(self) -> str:
        return f"PinMailer(pin=<hidden>, verification={self.verification!r})"
