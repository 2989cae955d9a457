"""In-memory copies of what every request reads: cards (PIN data, limits, status, version)
and terminal keys, invalidated by PostgreSQL ``NOTIFY`` (``switch/db/notifications.py``).

Cards are hints, never the truth: the 0200 batch re-reads the card under its row lock and
compares the version the switch decided with; a stale copy is answered ``stale``, dropped and
refreshed, and the request goes again. A dropped listener connection clears everything.

Terminal keys are re-read under every sign-on (:meth:`KeyBook.refresh`, called by
``switch/netmgmt.py`` before the 0810), so a node's copy is never older than the terminal's
sign-on, whatever the order in which a key change's ``NOTIFY`` and the sign-on arrive (a
terminal lands on any node after a reconnect; docs/deployment.md). ``NOTIFY`` then only matters
between sign-ons. Each copy carries the row's ``key_version`` (migration 0810): a read that
returns after a newer one never puts older keys back.

Limits: ``cards_cached_max`` entries (a full cache is emptied, not scanned); misses are
looked up together, one query per batch of misses (the ledger's group commit).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from ledger_adapter.group_commit import GroupCommitter
from switch.authorization.limits import CardLimits, effective_limits
from switch.config import AuthorizationConfig
from switch.db.runtime import Database, DatabaseUnavailable
from switch.emv.checks import ChipOnFile
from switch.hsm.verification_data import PinVerificationData
from switch.ports import TerminalSession

cards_cached_max: Final = 200_000
card_lookup_batch_max: Final = 256
# Bounded: one entry per terminal seen recently.
remembered_keys_max: Final = 50_000

KEYS_QUERY: Final = (
    "SELECT terminal_id, key_type, tmk, tpk, tak, key_version FROM terminal_keys"
    " WHERE terminal_id = $1"
)

# The card and, for a chip card, its chip data (section 11) in one read.
CARD_QUERY: Final = (
    "SELECT c.card_id, c.pan_hash, c.version, c.status, c.expiry, c.account_id, c.pan_masked,"
    " c.pin_verification, c.limits, k.imk_ac, k.psn, k.atc_accepted"
    " FROM cards c LEFT JOIN card_chips k ON k.card_id = c.card_id"
    " WHERE c.pan_hash = ANY($1::text[])"
)


@dataclass(frozen=True, slots=True)
class CardView:
    """What the switch decides with before the batch (the batch checks ``version``)."""

    card_id: int
    version: int
    status: str
    expiry: str
    account_id: str
    pan_masked: str
    pin_verification: PinVerificationData
    limits: CardLimits
    limits_json: dict[str, Any]
    chip: ChipOnFile | None = None  # a chip card's data on file (section 11)


class _Missing:
    __slots__ = ()


MISSING: Final = _Missing()


class CardCache:
    """Cards by keyed PAN hash; ``None`` cached for a card not on file (an INSERT notifies)."""

    def __init__(self, db: Database, config: AuthorizationConfig) -> None:
        self._db = db
        self._config = config
        self._cards: dict[str, CardView | None] = {}
        # Bumped by every invalidation: a lookup that started before one does not store.
        self._generation = 0
        self._lookups: GroupCommitter[str, tuple[int, CardView | None]] = GroupCommitter(
            self._fetch, name="card-lookups", batch_size_max=card_lookup_batch_max,
            batches_in_flight_max=2, queue_length_max=8192,
        )  # fmt: skip
        self.hits = 0
        self.misses = 0

    def peek(self, pan_hash: str) -> CardView | _Missing | None:
        return self._cards.get(pan_hash, MISSING)

    async def get(self, pan_hash: str) -> CardView | None:
        """The cached card, or a fresh read (raises DatabaseUnavailable)."""
        cached = self._cards.get(pan_hash, MISSING)
        if not isinstance(cached, _Missing):
            self.hits += 1
            return cached
        return await self.reload(pan_hash)

    async def reload(self, pan_hash: str) -> CardView | None:
        """Read the card from PostgreSQL now (after a ``stale`` answer from the batch)."""
        self.misses += 1
        self._cards.pop(pan_hash, None)
        generation = self._generation
        _, card = await self._lookups.submit(pan_hash, pan_hash)
        if generation == self._generation:
            if len(self._cards) >= cards_cached_max:
                self._cards.clear()
            self._cards[pan_hash] = card
        return card

    def invalidate(self, pan_hash: str) -> None:
        self._generation += 1
        self._cards.pop(pan_hash, None)

    def clear(self) -> None:
        self._generation += 1
        self._cards.clear()

    async def _fetch(
        self, pan_hashes: Sequence[str]
    ) -> list[tuple[int, CardView | None] | Exception]:
        async def call(connection: asyncpg.Connection) -> list[asyncpg.Record]:
            return list(await connection.fetch(
                CARD_QUERY, list(pan_hashes),
            ))  # fmt: skip

        rows = await self._db.run(call)
        found = {row["pan_hash"]: self._view(row) for row in rows}
        return [(0, found.get(pan_hash)) for pan_hash in pan_hashes]

    def _view(self, row: asyncpg.Record) -> CardView:
        limits_json = json.loads(row["limits"]) if row["limits"] is not None else {}
        return CardView(
            card_id=row["card_id"],
            version=row["version"],
            status=row["status"],
            expiry=row["expiry"],
            account_id=row["account_id"],
            pan_masked=row["pan_masked"],
            pin_verification=PinVerificationData.from_json(row["pin_verification"]),
            limits=effective_limits(self._config, limits_json),
            limits_json=limits_json,
            chip=None if row["imk_ac"] is None else ChipOnFile(
                imk_ac=row["imk_ac"], psn=row["psn"], atc_accepted=row["atc_accepted"]
            ),
        )


@dataclass(frozen=True, slots=True)
class TerminalKeys:
    """LMK handles of a terminal's keys and the row's ``key_version`` (0: not known)."""

    terminal_id: str
    key_type: str
    tmk: str
    tpk: str | None
    tak: str | None
    version: int = 0


class KeyBook:
    """Terminal keys by terminal id: re-read under each sign-on (:meth:`refresh`), cached until
    a ``NOTIFY`` on ``atm_terminals`` (key exchange on any node, a TMK load or rotation, a
    disabled terminal) or a listener reset drops them; the last keys read are also remembered
    apart, so a ``91`` can still be MAC'd while PostgreSQL is down."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cached: dict[str, TerminalKeys | None] = {}
        # Bumped by every invalidation: a read that started before one does not store.
        self._generation = 0
        self._last: OrderedDict[str, TerminalKeys] = OrderedDict()

    async def load(
        self, terminal_id: str, session: TerminalSession | None = None
    ) -> TerminalKeys | None:
        """Current keys; when PostgreSQL is down, the last known keys (or re-raise)."""
        if terminal_id in self._cached:
            return self._cached[terminal_id]
        generation = self._generation
        try:
            keys = await self._read(terminal_id)
        except DatabaseUnavailable:
            remembered = self._last.get(terminal_id)
            if remembered is None:
                raise
            return remembered
        return self._store(terminal_id, keys, generation)

    async def refresh(
        self, terminal_id: str, session: TerminalSession | None = None
    ) -> TerminalKeys | None:
        """Under a sign-on, before it is answered: the keys as PostgreSQL has them now, so
        the terminal's first message is checked and answered under the keys most recently
        agreed on any node. Raises DatabaseUnavailable (the sign-on is answered ``91``)."""
        self._cached.pop(terminal_id, None)
        generation = self._generation
        return self._store(terminal_id, await self._read(terminal_id), generation)

    async def _read(self, terminal_id: str) -> TerminalKeys | None:
        row = await self._db.fetchrow(KEYS_QUERY, terminal_id)
        if row is None:
            return None
        return TerminalKeys(row["terminal_id"], row["key_type"], row["tmk"], row["tpk"],
                            row["tak"], int(row["key_version"]))

    def _store(self, terminal_id: str, keys: TerminalKeys | None, generation: int
               ) -> TerminalKeys | None:
        """Keep ``keys`` unless an invalidation came during the read or newer keys are held;
        returns the keys to use now (the newer ones held, when the read was older)."""
        if keys is None:
            self._last.pop(terminal_id, None)
        else:
            keys = self._remember_last(keys)
        if generation != self._generation:
            return keys
        cached = self._cached.get(terminal_id)
        if cached is not None and keys is not None and keys.version < cached.version:
            return cached
        if len(self._cached) >= remembered_keys_max:
            self._cached.clear()
        self._cached[terminal_id] = keys
        return keys

    def remember(self, keys: TerminalKeys, session: TerminalSession | None = None) -> None:
        """Keys this process just wrote (key exchange): used at once, before the NOTIFY."""
        self._generation += 1
        self._cached[keys.terminal_id] = self._remember_last(keys)

    def _remember_last(self, keys: TerminalKeys) -> TerminalKeys:
        """Remember ``keys`` as the last known unless newer ones are; return the newest."""
        last = self._last.get(keys.terminal_id)
        if last is not None and keys.version < last.version:
            self._last.move_to_end(keys.terminal_id)
            return last
        self._last[keys.terminal_id] = keys
        self._last.move_to_end(keys.terminal_id)
        while len(self._last) > remembered_keys_max:
            self._last.popitem(last=False)
        return keys

    def invalidate(self, terminal_id: str) -> None:
        self._generation += 1
        self._cached.pop(terminal_id, None)

    def clear(self) -> None:
        self._generation += 1
        self._cached.clear()

    def remembered(self, terminal_id: str) -> TerminalKeys | None:
        return self._last.get(terminal_id)
