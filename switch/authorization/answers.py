"""The one response builder of the authorization path: every 0210, 0230 and 0430 it sends.

A response is a deterministic function of the request and the stored decision (spec 5.5: a
repeat gets "the original response again, the MAC recomputed, the content identical"):

* the fields the request class echoes (``switch.protocol.responses.ECHOED_FIELDS``), 39;
* 15, the settlement date: the UTC day the decision was recorded (or received, unrecorded);
* approved 0200s: 38 from the record id; 54 (ledger then available balance) for every
  approved type except the payee name inquiry (spec 10: it reveals only 48/PN); 48/PN or
  48/MS from the decision's stored data;
* declined 0200s (not 30/58): 48/TX, the screen text in the customer's 48/LG language;
* the MAC under the TAK that verified the request, except on 30 and 58 (spec 8).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from switch.authorization import formatting
from switch.authorization.outcomes import UNMACED_CODES
from switch.authorization.texts import INSERT_CHIP, screen_text
from switch.hsm import Hsm
from switch.protocol.answer import Answer
from switch.protocol.field48 import encode_tags
from switch.protocol.message import Message, encode_message, encode_message_async_mac
from switch.protocol.responses import response_fields, response_mti

# Approved types whose 0210 carries field 54 (spec 5.2, and spec 10 for 39xx00).
TYPES_WITH_BALANCES = frozenset({"01", "21", "31", "38", "40"})
WITHOUT_SCREEN_TEXT = frozenset({"00", "30", "58"})


def financial_fields(
    message: Message,
    response_code: str,
    *,
    decided_at: dt.datetime,
    record_id: int | None = None,
    balances: tuple[int, int, str] | None = None,
    info: Any = None,
    language: str | None = None,
    chip_fallback: bool = False,
) -> dict[str, str]:
    """The fields of a 0210 (or 0230/0430 when ``message`` is an advice)."""
    extra: dict[str, str] = {"15": formatting.settlement_date(decided_at)}
    tags: dict[str, str] = {}
    is_request_0200 = message.mti == "0200"
    if response_code == "00" and message.mti[1:3] == "20":
        pc = message.fields.get("3", "")
        if record_id is not None:
            extra["38"] = formatting.authorization_id(record_id)
        if balances is not None and pc[:2] in TYPES_WITH_BALANCES:
            ledger_minor, available_minor, currency = balances
            extra["54"] = formatting.additional_amounts(
                processing_code=pc,
                currency=currency,
                ledger_minor=ledger_minor,
                available_minor=available_minor,
            )
        tags.update(_info_tags(pc, info))
    elif response_code not in WITHOUT_SCREEN_TEXT:
        # Section 11: a chip card read by stripe is asked to be inserted (chip), not declined
        # with a generic text.
        tags["TX"] = screen_text(INSERT_CHIP if chip_fallback else response_code, language)
    if tags and is_request_0200:
        extra["48"] = encode_tags(tags)
    return response_fields(message, response_code, extra)


def _info_tags(processing_code: str, info: Any) -> dict[str, str]:
    """48/PN for a payee name inquiry, 48/MS for a mini statement, from the stored data."""
    if not isinstance(info, Mapping | list):
        return {}
    kind = processing_code[:2]
    if kind == "39" and isinstance(info, Mapping) and "name" in info:
        return {"PN": formatting.mask_payee_name(str(info["name"]))}
    if kind == "38" and isinstance(info, list):
        return {"MS": formatting.mini_statement([_statement_line(line) for line in info])}
    return {}


def _statement_line(line: Any) -> formatting.StatementLine:
    posted_on, amount, description = line
    return formatting.StatementLine(
        posted_on=dt.date.fromisoformat(str(posted_on)),
        direction="C" if int(amount) > 0 else "D",
        amount_minor=abs(int(amount)),
        description=str(description),
    )


async def encode_answer(
    hsm: Hsm, tak: str | None, message: Message, fields: Mapping[str, str]
) -> Answer:
    """Encode, MAC'd with the TAK that verified the request (no MAC on 30/58, none without a
    TAK: spec 8)."""
    code = fields["39"]
    mti = response_mti(message.mti)
    if tak is None or code in UNMACED_CODES:
        return Answer(code, encode_message(mti, fields))

    async def mac(data: bytes) -> str:
        return await hsm.generate_mac(tak, data)

    return Answer(code, await encode_message_async_mac(mti, fields, mac=mac))
