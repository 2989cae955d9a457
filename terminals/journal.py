"""The ATM's electronic journal (EJ) and its CEN/XFS-style cassette counters.

Journal: append-only JSON lines, one record per customer or device event. Every record carries a
sequence number and the SHA-256 of the previous line, so a deleted or edited line is detected by
`verify_journal`. Fields are masked on the way in and the masking fails closed: a PAN keeps only
its first 6 and last 4 digits, track 2 becomes that masked PAN, and PINs, PIN blocks, CVVs and
keys are never written at all.

Counters: one `CashUnit` per cassette with the XFS names (initial, count, dispensed, rejected,
retracted) and the invariant count = initial - dispensed - rejected, checked on every change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Field names whose values are never journaled, whatever they hold.
_FORBIDDEN_FIELDS = frozenset(
    {"pin", "pin_block", "new_pin_block", "cvv", "cvv2", "key", "tmk", "tpk", "tak", "component"}
)
# Numeric identifiers that are not card numbers (a 12-digit RRN would look like a PAN).
_NOT_A_PAN_FIELDS = frozenset({"rrn", "stan", "auth_id", "terminal_id", "seq"})
_WIPED = "[withheld]"
_GENESIS_HASH = "0" * 64
# A PAN-like run of 12 or more digits (over 19 is withheld whole), and track 2 (PAN '=' expiry,
# service code, discretionary data).
_PAN_RUN = re.compile(r"(?<!\d)\d{12,}(?!\d)")
_TRACK2 = re.compile(r";?(\d{12,19})[=D]\d*\??")


class JournalError(Exception):
    """The journal file is damaged or was tampered with."""


class CounterInvariantViolation(Exception):
    """Cassette counters no longer add up: stop dispensing and call an engineer."""


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits; anything that is not a 12-19 digit PAN is withheld."""
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        return _WIPED
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def mask_value(key: str, value: Any) -> Any:
    """A field value as it may be journaled (fails closed)."""
    if key.lower() in _FORBIDDEN_FIELDS:
        return _WIPED
    if key.lower() in ("pan", "track2"):
        match = _TRACK2.fullmatch(str(value)) or _PAN_RUN.fullmatch(str(value))
        return mask_pan(match.group(1) if match and match.groups() else str(value))
    if isinstance(value, str) and key.lower() in _NOT_A_PAN_FIELDS:
        return value
    if isinstance(value, str):
        value = _TRACK2.sub(lambda m: mask_pan(m.group(1)), value)
        return _PAN_RUN.sub(lambda m: mask_pan(m.group(0)), value)
    if isinstance(value, Mapping):
        return {k: mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(key, v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _WIPED  # an object we do not know how to show safely


class Journal:
    """Append-only JSON-lines journal of one terminal."""

    def __init__(self, path: Path, terminal_id: str, *, durable: bool = True) -> None:
        self.path = path
        self.terminal_id = terminal_id
        self._durable = durable  # fsync each record (off only for throwaway test journals)
        self._sequence, self._last_hash = _tail_of(path)
        self.events: list[str] = []  # events written by this object (this run), for checks

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one record; returns it as written (masked)."""
        self._sequence += 1
        record = {
            "seq": self._sequence,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "terminal_id": self.terminal_id,
            "event": event,
            **{key: mask_value(key, value) for key, value in fields.items()},
            "prev": self._last_hash,
        }
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            if self._durable:
                os.fsync(handle.fileno())
        self._last_hash = hashlib.sha256(line.encode("utf-8")).hexdigest()
        self.events.append(event)
        return record


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every record, after checking the sequence and hash chain (JournalError if broken)."""
    records, previous_hash = [], _GENESIS_HASH
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise JournalError(f"{path}:{number}: not JSON") from None
            if record.get("seq") != number or record.get("prev") != previous_hash:
                raise JournalError(f"{path}:{number}: sequence or hash chain broken")
            previous_hash = hashlib.sha256(line.encode("utf-8")).hexdigest()
            records.append(record)
    return records


def verify_journal(path: Path) -> int:
    """Number of records in a journal whose chain is intact; JournalError otherwise."""
    return len(read_journal(path))


def export_day(path: Path, day: str) -> list[dict[str, Any]]:
    """The records of one UTC day (``YYYY-MM-DD``), for the host's reconciliation; the whole
    chain is verified first, so an export never hides a tampered journal."""
    return [record for record in read_journal(path) if str(record.get("at", ""))[:10] == day]


def _tail_of(path: Path) -> tuple[int, str]:
    records = read_journal(path)
    if not records:
        return 0, _GENESIS_HASH
    with path.open("rb") as handle:
        last_line = handle.read().splitlines(keepends=True)[-1]
    return int(records[-1]["seq"]), hashlib.sha256(last_line).hexdigest()


# -- cassette counters ---------------------------------------------------------------------


# Journaled when the cassettes are filled: counters and balancing start again from here.
REPLENISHED_EVENT = "cassettes_replenished"


@dataclass
class CashUnit:
    """One cassette's counters (CEN/XFS CDM cash unit names)."""

    number: int
    currency: str
    denomination: int  # minor units
    initial: int = 0  # loaded at the last replenishment
    count: int = 0  # believed to be in the cassette now
    dispensed: int = 0  # left through the exit (including notes later retracted)
    rejected: int = 0  # diverted to the reject bin (doubles, skews, purged jams)
    retracted: int = 0  # presented, not taken, pulled back into the retract bin

    def check(self) -> None:
        if self.count != self.initial - self.dispensed - self.rejected or min(
            self.count, self.dispensed, self.rejected, self.retracted
        ) < 0 or self.retracted > self.dispensed:
            raise CounterInvariantViolation(f"cassette {self.number} counters do not add up")

    @property
    def paid_out(self) -> int:
        """Notes the customer really took."""
        return self.dispensed - self.retracted


@dataclass
class CassetteCounters:
    """The four cash units, updated from dispense results and retracts."""

    units: list[CashUnit] = field(default_factory=list)

    def replenish(self, number: int, count: int) -> None:
        """A new full cassette: every counter restarts from `count`."""
        unit = self.units[number - 1]
        unit.initial, unit.count = count, count
        unit.dispensed = unit.rejected = unit.retracted = 0

    def record_dispense(
        self, checked: Sequence[int], exited: Sequence[int], rejected: Sequence[int]
    ) -> None:
        """Apply one dispense. Notes picked but neither out nor rejected were jammed; a purge
        sends them to the reject bin, so they count as rejected."""
        for unit, picked, out, diverted in zip(self.units, checked, exited, rejected, strict=True):
            if out + diverted > picked:
                raise CounterInvariantViolation(f"cassette {unit.number}: more out than picked")
            unit.count -= picked
            unit.dispensed += out
            unit.rejected += picked - out
            unit.check()

    def record_retract(self, presented: Sequence[int]) -> None:
        """The notes last presented (per cassette) were retracted."""
        for unit, notes in zip(self.units, presented, strict=True):
            unit.retracted += notes
            unit.check()

    def amount_paid_out(self) -> int:
        """Value the customers took, minor units (the figure to balance with the host)."""
        return sum(unit.paid_out * unit.denomination for unit in self.units)

    def snapshot(self) -> list[dict[str, Any]]:
        """For the journal and the terminal's own storage."""
        return [asdict(unit) for unit in self.units]

    @classmethod
    def restore(cls, snapshot: Sequence[Mapping[str, Any]]) -> CassetteCounters:
        counters = cls([CashUnit(**dict(unit)) for unit in snapshot])
        for unit in counters.units:
            unit.check()
        return counters
