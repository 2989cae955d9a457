"""Building, recording and encoding answers.

Every answer goes through here: the echoed fields (core's ``response_fields``), 15, 38 for
approvals, the approval's extras, 48 (PN/MS of the approval, TX on declines), then the record
in ``auth_messages`` (except 30/58/63, spec 5.5) strictly before the bytes are returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from switch.authorization import formatting, store
from switch.authorization.context import AuthContext
from switch.authorization.effects import Approval
from switch.authorization.outcomes import UNRECORDED_CODES, Outcome, response_code
from switch.authorization.request import MessageKey
from switch.authorization.security import encode_response
from switch.authorization.texts import screen_text
from switch.protocol.field48 import encode_tags
from switch.protocol.message import Message
from switch.protocol.responses import response_fields, response_mti

# Field 2 (PAN), echoed by a 0210, is never stored in clear: the stored answer keeps only the
# fact that it was echoed, and a repeat (same key, same content: same PAN) supplies it again.
PAN_FIELD = "2"


def storable(fields: Mapping[str, str]) -> dict[str, str | None]:
    stored: dict[str, str | None] = dict(fields)
    if PAN_FIELD in stored:
        stored[PAN_FIELD] = None
    return stored


def restored(stored: Mapping[str, str | None], message: Message) -> dict[str, str]:
    fields = {key: value for key, value in stored.items() if value is not None}
    if PAN_FIELD in stored:
        pan = message.pan
        if pan is not None:
            fields[PAN_FIELD] = pan
    return fields


class Replier:
    def __init__(self, ctx: AuthContext) -> None:
        self._ctx = ctx

    def fields_for(
        self,
        message: Message,
        received_at: dt.datetime,
        outcome: Outcome,
        *,
        approval: Approval | None = None,
        record_id: int | None = None,
        language: str | None = None,
    ) -> dict[str, str]:
        code = response_code(outcome)
        extra: dict[str, str] = {"15": formatting.settlement_date(received_at)}
        tags: dict[str, str] = {}
        if approval is not None and outcome is Outcome.APPROVED:
            if record_id is not None and message.mti.startswith("02") and message.mti[2] == "0":
                extra["38"] = formatting.authorization_id(record_id)
            extra.update(approval.extra)
            tags.update(approval.tags)
        elif code not in ("00", "30", "58"):
            tags["TX"] = screen_text(code, language)
        if tags and message.mti in ("0200",):
            extra["48"] = encode_tags(tags)
        return response_fields(message, code, extra)

    async def record_and_encode(
        self,
        message: Message,
        key: MessageKey,
        tak: str | None,
        received_at: dt.datetime,
        outcome: Outcome,
        *,
        approval: Approval | None = None,
        record_id: int | None = None,
        card_id: int | None = None,
        language: str | None = None,
    ) -> bytes:
        fields = self.fields_for(
            message, received_at, outcome, approval=approval, record_id=record_id, language=language
        )
        code = fields["39"]
        if code in UNRECORDED_CODES:
            await store.forget(self._ctx.db, key)
        else:
            effect: dict[str, Any] | None = approval.effect if approval is not None else None
            await store.finish(
                self._ctx.db,
                key,
                response_code=code,
                response_fields=storable(fields),
                card_id=card_id,
                effect=effect,
            )
        return await encode_response(self._ctx.hsm, tak, response_mti(message.mti), fields)

    async def record_unavailable(
        self, message: Message, key: MessageKey, received_at: dt.datetime, language: str | None
    ) -> None:
        fields = self.fields_for(message, received_at, Outcome.UNAVAILABLE, language=language)
        await store.finish(
            self._ctx.db, key, response_code=fields["39"], response_fields=storable(fields)
        )

    async def encode_unrecorded(
        self,
        message: Message,
        tak: str | None,
        received_at: dt.datetime,
        outcome: Outcome,
        language: str | None = None,
    ) -> bytes:
        fields = self.fields_for(message, received_at, outcome, language=language)
        return await encode_response(self._ctx.hsm, tak, response_mti(message.mti), fields)

    async def encode_stored(
        self, message: Message, tak: str | None, record: store.MessageRecord
    ) -> bytes:
        """Spec 5.5: the original answer, identical content, MAC recomputed.

        A row resolved as ``91`` by the sweeper or a reversal has no stored fields (the request
        was not at hand): the answer is rebuilt from the repeat, which has the same content.
        """
        if record.response_fields is None:
            fields = self.fields_for(message, record.created_at, Outcome.UNAVAILABLE)
        else:
            fields = restored(record.response_fields, message)
        return await encode_response(self._ctx.hsm, tak, response_mti(message.mti), fields)
