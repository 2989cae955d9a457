"""The wire protocol of spec sections 1-3, sans-I/O: framing, the ISO 8583 dialect,
the typed message view, field 48 tags, wire code enums and the response builder.

Nothing here touches a socket; the server and the terminal-side client share it.
"""

from switch.protocol.codes import (
    MessageClass,
    Mti,
    NetworkCode,
    ResponseCode,
    ReversalReason,
    TransactionType,
    message_class,
)
from switch.protocol.errors import (
    FrameTooLarge,
    FramingError,
    MessageBuildError,
    MessageFormatError,
    ProtocolError,
)
from switch.protocol.field48 import decode_tags, encode_tags
from switch.protocol.framing import FrameDecoder, encode_frame
from switch.protocol.message import (
    Message,
    decode_message,
    encode_message,
    encode_message_async_mac,
    mac_input_of,
    mac_of,
)
from switch.protocol.responses import encode_format_error_response, response_fields, response_mti

__all__ = [
    "FrameDecoder",
    "FrameTooLarge",
    "FramingError",
    "Message",
    "MessageBuildError",
    "MessageClass",
    "MessageFormatError",
    "Mti",
    "NetworkCode",
    "ProtocolError",
    "ResponseCode",
    "ReversalReason",
    "TransactionType",
    "decode_message",
    "decode_tags",
    "encode_format_error_response",
    "encode_frame",
    "encode_message",
    "encode_message_async_mac",
    "encode_tags",
    "mac_input_of",
    "mac_of",
    "message_class",
    "response_fields",
    "response_mti",
]
