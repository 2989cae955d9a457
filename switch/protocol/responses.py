"""Building responses: the response MTI and the fields each response echoes (spec 5).

One table, :data:`ECHOED_FIELDS`, names per message class the request fields a
response repeats; :func:`response_fields` applies it. Fields a response adds
(15, 38, 54, 48, ...) come from the caller in ``extra``; the MAC, when one is
due, is added by :func:`switch.protocol.message.encode_message`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

from switch.protocol.codes import MessageClass, ResponseCode, is_request_mti, message_class
from switch.protocol.errors import MessageBuildError, MessageFormatError
from switch.protocol.message import Message, encode_message

# Spec 5.1 (0810), 5.2 (0210), 5.3/5.4 (0230/0430): fields echoed when the request had them.
ECHOED_FIELDS: Final[dict[MessageClass | None, tuple[str, ...]]] = {
    MessageClass.NETWORK: ("7", "11", "41", "70"),
    MessageClass.FINANCIAL: (
        "2",
        "3",
        "4",
        "7",
        "11",
        "12",
        "13",
        "32",
        "37",
        "41",
        "42",
        "49",
        "102",
        "103",
    ),
    MessageClass.COMPLETION: ("3", "4", "7", "11", "32", "37", "41", "49", "90"),
    MessageClass.REVERSAL: ("3", "4", "7", "11", "32", "37", "41", "49", "90"),
    # A request class this switch does not serve (answered 30/12): the matching keys.
    None: ("3", "4", "7", "11", "32", "37", "41", "49"),
}


def response_mti(request_mti: str) -> str:
    """``0200`` -> ``0210``, ``0221`` -> ``0230``, ``0421`` -> ``0430``, ``0800`` -> ``0810``."""
    if not is_request_mti(request_mti):
        raise MessageBuildError(f"{request_mti!r} is not a request MTI")
    return f"{request_mti[:2]}{int(request_mti[2]) + 1}0"


def response_fields(
    request: Message, response_code: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The fields of the response to ``request``: the echoed fields, 39, then ``extra``."""
    return _fields_for(message_class(request.mti), request.fields, response_code, extra)


def encode_format_error_response(error: MessageFormatError) -> bytes | None:
    """The ``30`` answer to a malformed message, or None when MTI and STAN are unreadable.

    Responses ``30`` carry no MAC (spec 8). A malformed response from the terminal
    (an odd third MTI digit) is never answered.
    """
    if error.mti is None or error.stan is None or not is_request_mti(error.mti):
        return None
    fields = _fields_for(message_class(error.mti), error.fields, ResponseCode.FORMAT_ERROR, None)
    fields["11"] = error.stan
    return encode_message(response_mti(error.mti), fields)


def settlement_date(now: dt.datetime) -> str:
    """Field 15 (MMDD): this switch settles on the UTC date it processed the message."""
    return now.astimezone(dt.UTC).strftime("%m%d")


def _fields_for(
    klass: MessageClass | None,
    source: Mapping[str, str],
    response_code: str,
    extra: Mapping[str, str] | None,
) -> dict[str, str]:
    fields = {key: source[key] for key in ECHOED_FIELDS[klass] if key in source}
    fields["39"] = str(response_code)
    if extra:
        fields.update(extra)
    return fields
