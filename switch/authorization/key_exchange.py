"""Key exchange, 0800 with field 70 = ``161`` (spec 5.1, 7).

A new TPK (``P0``) and TAK (``M3``; ``M6`` for AES terminals) are generated in the HSM, stored
under the LMK in ``terminal_keys`` and returned as TR-31 blocks under the terminal's TMK in
48/KP and 48/KM (version ``B`` under a TDES TMK, ``D`` under AES; the HSM chooses by the KEK,
``issue_terminal_working_keys``).
The keys are stored before the 0810 is sent: the terminal sends nothing else in between, so
they apply to every message after the 0810, on this node at once (its key book takes them with
the row's new ``key_version``) and on the others from the terminal's next sign-on there (which
re-reads them, ``caches.py``), or earlier when the ``NOTIFY`` arrives. 0810s carry no MAC.
A terminal without a TMK is answered ``96`` (key material missing: an installation fault, not
the customer's), as is one whose TMK changed during the exchange.
"""

from __future__ import annotations

from ops.metrics import DEFAULT_GROUP
from switch.authorization.context import AuthContext
from switch.authorization.security import KeyBook, TerminalKeys
from switch.db.runtime import DatabaseUnavailable
from switch.hsm.errors import HsmError
from switch.ports import TerminalSession
from switch.protocol.field48 import encode_tags
from switch.protocol.message import Message, encode_message
from switch.protocol.responses import response_fields, response_mti


class KeyExchangeHandler:
    def __init__(self, ctx: AuthContext, keys: KeyBook) -> None:
        self._ctx = ctx
        self._keys = keys

    async def __call__(
        self, message: Message, raw: bytes, session: TerminalSession
    ) -> bytes | None:
        terminal_id = message.terminal_id or ""
        try:
            keys = await self._keys.load(terminal_id)
            if keys is None or not keys.tmk:
                return self._counted(message, "96")
            tags = await self._exchange(keys, session)
            if tags is None:
                return self._counted(message, "96")
        except DatabaseUnavailable:
            return self._counted(message, "91")
        except HsmError:
            return self._counted(message, "96")
        return self._counted(message, "00", {"48": encode_tags(tags)})

    def _counted(self, message: Message, code: str, extra: dict[str, str] | None = None) -> bytes:
        metrics = self._ctx.metrics
        if metrics is not None:
            metrics.key_exchange(DEFAULT_GROUP, code == "00")
        return self._answer(message, code, extra)

    async def _exchange(
        self, keys: TerminalKeys, session: TerminalSession
    ) -> dict[str, str] | None:
        issued = await self._ctx.hsm.issue_terminal_working_keys(keys.tmk)
        version = await self._ctx.db.fetchval(
            "UPDATE terminal_keys SET tpk = $2, tak = $3, updated_at = now()"
            " WHERE terminal_id = $1 AND tmk = $4 RETURNING key_version",
            keys.terminal_id,
            issued.tpk,
            issued.tak,
            keys.tmk,
        )
        if version is None:  # the row went away or got a new TMK meanwhile: 96 as above
            self._keys.invalidate(keys.terminal_id)
            return None
        self._keys.remember(
            TerminalKeys(keys.terminal_id, keys.key_type, keys.tmk, issued.tpk, issued.tak,
                         int(version)),
            session,
        )
        return {"KP": issued.tpk_block, "KM": issued.tak_block}

    @staticmethod
    def _answer(message: Message, code: str, extra: dict[str, str] | None = None) -> bytes:
        return encode_message(response_mti(message.mti), response_fields(message, code, extra))
