"""Voids the switch owes PostgreSQL, kept on local disk until PostgreSQL has them.

Spec 5.6 / 10: a ``91`` never leaves a ledger effect. When a 0200's batch answer comes too
late, the switch answers ``91`` and must void the request (``auth_void``). If PostgreSQL is
too slow or gone for that too, the void cannot be in the database yet; it is written here
first (append, ``fsync``) and only then is the ``91`` sent, so a crash of the switch at any
instant loses no void: on start the sweeper replays what the journal holds, and a line goes
once PostgreSQL has answered for it. A repeat of such a request is answered ``91`` while its
void is owed (:meth:`VoidJournal.owes`).

Without a path (tests that build the service alone) the journal lives in memory only.
The journal holds message keys, the content fingerprint (a keyed hash, no card data) and
the attempt's token: nothing PCI-sensitive.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger("atm.authorization")

# Bounded: past this the switch still answers 91 but logs each void it cannot keep.
voids_owed_max: Final = 100_000


@dataclass(frozen=True, slots=True)
class OwedVoid:
    """What ``auth_void`` needs for one request."""

    terminal_id: str
    stan: str
    transmission_dt: str
    acquirer_id: str
    fingerprint: str
    processing_code: str
    amount_minor: int
    token: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.terminal_id, self.stan, self.transmission_dt, self.acquirer_id)


class VoidJournal:
    """Owed voids by 0200 key; durable when given a path."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._owed: dict[tuple[str, str, str, str], OwedVoid] = {}
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            try:
                entry = json.loads(line)
                if entry.get("done"):
                    self._owed.pop(tuple(entry["key"]), None)
                else:
                    void = OwedVoid(**entry["void"])
                    self._owed[void.key] = void
            except (ValueError, KeyError, TypeError):
                # A torn last line (crash mid-write) is the only expected case.
                log.warning("void journal: line %d unreadable, skipped", number)
        if self._owed:
            log.warning("void journal: %d voids owed from before the restart", len(self._owed))

    def __len__(self) -> int:
        return len(self._owed)

    def owes(self, key: tuple[str, str, str, str]) -> bool:
        return key in self._owed

    def pending(self, limit: int) -> list[OwedVoid]:
        return list(self._owed.values())[:limit]

    def add(self, void: OwedVoid) -> bool:
        """Keep ``void`` durably; False when the journal is full (the void is lost: logged)."""
        if void.key in self._owed:
            return True
        if len(self._owed) >= voids_owed_max:
            log.error("void journal full; a 91 may keep its effect", extra={"stan": void.stan})
            return False
        self._owed[void.key] = void
        return self._append({"void": asdict(void)})

    def settle(self, voids: list[OwedVoid]) -> None:
        """PostgreSQL has answered for these: forget them (and compact when nothing is owed)."""
        for void in voids:
            self._owed.pop(void.key, None)
        if self._path is None:
            return
        if not self._owed:
            try:
                self._path.unlink(missing_ok=True)
            except OSError as exc:
                log.error("void journal not compacted: %s", exc)
            return
        for void in voids:
            self._append({"done": True, "key": list(void.key)})

    def _append(self, entry: dict[str, object]) -> bool:
        """One line, on disk before this returns (False: only in memory, logged)."""
        if self._path is None:
            return True
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("void journal not written (%s): an owed void is kept in memory only", exc)
            return False
        return True
