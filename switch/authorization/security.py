"""Terminal keys (LMK handles) and the MAC of spec 8: verify requests, MAC responses.

The last TAK read for each terminal is remembered so a ``91`` can still be MAC'd while
PostgreSQL is down; every request reads the keys again (a key exchange on another node must
take effect at once), the memory is only a fallback.
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

# Where a connection's session keeps its terminal's keys.
SESSION_KEYS = "authorization.keys"
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
    """Reads terminal keys from ``terminal_keys``; remembers the last read as a fallback."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._last: OrderedDict[str, TerminalKeys] = OrderedDict()

    async def load(self, terminal_id: str, session: Any = None) -> TerminalKeys | None:
        """Current keys; when PostgreSQL is down, the last known keys (or re-raise).

        With a ``session`` the keys read for it are kept on it: keys change only through a key
        exchange, which happens on the terminal's own connection and updates the session.
        """
        attributes = getattr(session, "attributes", None)
        if attributes is not None and SESSION_KEYS in attributes:
            cached: TerminalKeys = attributes[SESSION_KEYS]
            return cached
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
        if row is None:
            self._last.pop(terminal_id, None)
            return None
        keys = TerminalKeys(row["terminal_id"], row["key_type"], row["tmk"], row["tpk"], row["tak"])
        self.remember(keys, session)
        return keys

    def remember(self, keys: TerminalKeys, session: Any = None) -> None:
        attributes = getattr(session, "attributes", None)
        if attributes is not None:
            attributes[SESSION_KEYS] = keys
        self._last[keys.terminal_id] = keys
        self._last.move_to_end(keys.terminal_id)
        while len(self._last) > remembered_keys_max:
            self._last.popitem(last=False)

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
