"""Terminal keys (LMK handles) and the MAC of spec 8: verify requests, MAC responses.

Keys are cached per terminal and dropped by ``NOTIFY`` (a key exchange on another node takes
effect at once); the last TAK read for each terminal is also remembered apart so a ``91`` can
still be MAC'd while PostgreSQL is down.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switch.authorization.outcomes import UNMACED_CODES, Decline, Outcome
from switch.db.runtime import Database, DatabaseUnavailable
from switch.hsm import Hsm
from switch.hsm.errors import MacVerificationFailed
from switch.protocol.errors import MessageFormatError
from switch.protocol.message import encode_message, encode_message_async_mac, mac_input_of, mac_of

# Bounded: one entry per terminal seen recently.
remembered_keys_max = 50_000


@dataclass(frozen=True, slots=True)
class TerminalKeys:
    terminal_id: str
    key_type: str
    tmk: str
    tpk: str | None
    tak: str | None


class KeyBook:
    """Terminal keys by terminal id, cached until a ``NOTIFY`` on ``atm_terminals`` (key
    exchange on any node, the ``keys`` CLI, a disabled terminal) or a listener reset drops
    them; the last keys read are also remembered apart, so a ``91`` can still be MAC'd while
    PostgreSQL is down."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cached: dict[str, TerminalKeys | None] = {}
        self._generation = 0
        self._last: OrderedDict[str, TerminalKeys] = OrderedDict()

    async def load(self, terminal_id: str, session: Any = None) -> TerminalKeys | None:
        """Current keys; when PostgreSQL is down, the last known keys (or re-raise)."""
        if terminal_id in self._cached:
            return self._cached[terminal_id]
        generation = self._generation
        try:
            row = await self._db.fetchrow(
                "SELECT terminal_id, key_type, tmk, tpk, tak FROM terminal_keys"
                " WHERE terminal_id = $1",
                terminal_id,
            )
        except DatabaseUnavailable:
            remembered = self._last.get(terminal_id)
            if remembered is None:
                raise
            return remembered
        keys = None
        if row is not None:
            keys = TerminalKeys(
                row["terminal_id"], row["key_type"], row["tmk"], row["tpk"], row["tak"]
            )
            self._remember_last(keys)
        else:
            self._last.pop(terminal_id, None)
        if generation == self._generation:
            if len(self._cached) >= remembered_keys_max:
                self._cached.clear()
            self._cached[terminal_id] = keys
        return keys

    def remember(self, keys: TerminalKeys, session: Any = None) -> None:
        """Keys this process just wrote (key exchange): used at once, before the NOTIFY."""
        self._generation += 1
        self._cached[keys.terminal_id] = keys
        self._remember_last(keys)

    def _remember_last(self, keys: TerminalKeys) -> None:
        self._last[keys.terminal_id] = keys
        self._last.move_to_end(keys.terminal_id)
        while len(self._last) > remembered_keys_max:
            self._last.popitem(last=False)

    def invalidate(self, terminal_id: str) -> None:
        self._generation += 1
        self._cached.pop(terminal_id, None)

    def clear(self) -> None:
        self._generation += 1
        self._cached.clear()

    def remembered(self, terminal_id: str) -> TerminalKeys | None:
        return self._last.get(terminal_id)


async def verify_request_mac(
    hsm: Hsm, tak: str | None, raw: bytes, fields: Mapping[str, str]
) -> None:
    """``63`` unless the request carries a MAC that verifies under the terminal's TAK."""
    if tak is None or ("64" not in fields and "128" not in fields):
        raise Decline(Outcome.MAC_FAILED, "no TAK or no MAC field")
    try:
        await hsm.verify_mac(tak, mac_input_of(raw), mac_of(raw))
    except (MacVerificationFailed, MessageFormatError) as exc:
        raise Decline(Outcome.MAC_FAILED, "MAC does not verify") from exc


async def encode_response(hsm: Hsm, tak: str | None, mti: str, fields: Mapping[str, str]) -> bytes:
    """Encode a response, MAC'd with the TAK that verified the request (spec 7, 8).

    ``30`` and ``58`` carry no MAC; nor does any answer when the TAK is unknown.
    """
    if tak is None or fields.get("39") in UNMACED_CODES:
        return encode_message(mti, fields)

    async def mac(data: bytes) -> str:
        return await hsm.generate_mac(tak, data)

    return await encode_message_async_mac(mti, fields, mac=mac)
