"""Key components waiting for their custodians, in this process's memory only.

When the back office generates a terminal master key, each clear component is put here for one
named custodian, who collects it once (then it is gone) within ``COMPONENT_TTL_S``. Components are
never written to the database or a log; a restart of the admin process loses uncollected ones,
and the key must then be generated again (the TMK handle itself is already stored).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Final

import trio

COMPONENT_TTL_S: Final = 30 * 60.0
PENDING_COMPONENTS_MAX: Final = 1000  # bounded: an abandoned ceremony cannot grow memory


@dataclass(frozen=True, slots=True, repr=False)
class _Parcel:
    parcel_id: int
    custodian: str
    subject: str
    index: int
    component: str
    kcv: str
    key_kcv: str
    expires_at: float

    def listing(self) -> dict[str, Any]:
        return {"parcel_id": self.parcel_id, "subject": self.subject, "component": self.index,
                "component_kcv": self.kcv, "key_kcv": self.key_kcv}


class CustodyBox:
    """Parcels by custodian; ``collect`` hands one over once."""

    def __init__(self) -> None:
        self._parcels: dict[int, _Parcel] = {}
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"CustodyBox(<{len(self._parcels)} parcels hidden>)"

    def _expire(self) -> None:
        now = trio.current_time()
        for parcel_id in [p.parcel_id for p in self._parcels.values() if p.expires_at <= now]:
            del self._parcels[parcel_id]

    def deposit(self, subject: str, custodians: tuple[str, str],
                components: list[tuple[str, str]], key_kcv: str) -> list[int]:
        self._expire()
        if len(self._parcels) + len(components) > PENDING_COMPONENTS_MAX:
            raise OverflowError("too many uncollected key components")
        ids = []
        for index, ((component, kcv), custodian) in enumerate(zip(components, custodians,
                                                                  strict=True), start=1):
            parcel = _Parcel(next(self._ids), custodian, subject, index, component, kcv,
                             key_kcv, trio.current_time() + COMPONENT_TTL_S)
            self._parcels[parcel.parcel_id] = parcel
            ids.append(parcel.parcel_id)
        return ids

    def waiting_for(self, custodian: str) -> list[dict[str, Any]]:
        self._expire()
        return [p.listing() for p in self._parcels.values() if p.custodian == custodian]

    def collect(self, parcel_id: int, custodian: str) -> dict[str, Any] | None:
        """The component (once) if it is waiting for this custodian, else None."""
        self._expire()
        parcel = self._parcels.get(parcel_id)
        if parcel is None or parcel.custodian != custodian:
            return None
        del self._parcels[parcel_id]
        return parcel.listing() | {"component_value": parcel.component}
