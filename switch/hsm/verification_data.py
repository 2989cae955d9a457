"""PIN verification data kept with a card: never the PIN, only what checks it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from switch.hsm.errors import HsmError

verification_methods = ("ibm3624", "visa_pvv")


@dataclass(frozen=True, slots=True)
class PinVerificationData:
    """How to verify a card's PIN.

    ``method`` "ibm3624": ``value`` is the offset (as many digits as the PIN);
    "visa_pvv": ``value`` is the 4-digit PVV and ``pvki`` the key index.
    ``pvk`` is the LMK handle of the PIN verification key (usage V1 / V2).
    """

    method: str
    pvk: str
    value: str
    pvki: str | None = None

    def __post_init__(self) -> None:
        if self.method not in verification_methods:
            raise HsmError(f"unknown PIN verification method {self.method!r}")
        if not self.value.isascii() or not self.value.isdigit():
            raise HsmError("PIN verification value is decimal digits")
        if self.method == "visa_pvv" and (self.pvki is None or not self.pvki.isdigit()):
            raise HsmError("a Visa PVV needs a one-digit PVKI")

    def to_json(self) -> str:
        """JSON text for the cards table (safe to store: holds no PIN and no clear key)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> PinVerificationData:
        """Parse what ``to_json`` wrote (a JSON string or an already decoded mapping)."""
        try:
            raw = json.loads(data) if isinstance(data, str | bytes) else dict(data)
            return cls(
                method=str(raw["method"]),
                pvk=str(raw["pvk"]),
                value=str(raw["value"]),
                pvki=None if raw.get("pvki") is None else str(raw["pvki"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise HsmError(f"malformed PIN verification data: {exc}") from None
