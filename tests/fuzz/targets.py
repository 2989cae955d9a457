"""The fuzz targets: every decoder that reads bytes from outside, with the exception types it
may raise. Anything else it raises (or a call that takes longer than ``HANG_S``) is a bug.

One target per decoder, named after it: framing (both prefixes), the ISO 8583 dialect with
its typed accessors, field 48, each serial device protocol (frames, then commands/replies),
TR-31 key blocks, the card-network link's answer reading, and configuration files (TOML).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from switch.config import ConfigError, load_config
from switch.hsm.primitives.errors import PrimitiveError
from switch.hsm.primitives.tr31 import parse_tr31_header, tr31_unwrap
from switch.networks.base import NetworkProtocolError
from switch.networks.iso_messages import authorization_answer
from switch.protocol.errors import FramingError, MessageFormatError
from switch.protocol.field48 import decode_tags
from switch.protocol.framing import FrameDecoder
from switch.protocol.message import decode_message
from terminals.devices import card_reader, dispenser, pinpad, printer
from terminals.devices.errors import DeviceProtocolError
from terminals.devices.events import Frame

HANG_S: Final = 1.0  # one input taking longer than this is reported as a hang
KBPK: Final = bytes.fromhex("89E88CF7931444F334BD7547FC3F380C")  # the TR-31 seed corpus key


@dataclass(frozen=True, slots=True)
class Target:
    run: Callable[[bytes], object]
    expected: tuple[type[BaseException], ...]


def _frames(framing: str) -> Callable[[bytes], object]:
    def run(data: bytes) -> object:
        decoder = FrameDecoder(max_bytes=4096, framing=framing)
        decoder.receive_data(data)
        frames = []
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
        return frames

    return run


def _iso8583(data: bytes) -> object:
    message = decode_message(data)
    # The typed accessors every layer uses must not raise anything untyped either.
    return (message.pan, message.amount_minor, message.network_code, message.transaction_type,
            message.terminal_id, message.mac, message.is_repeat, message.tags())


def _field48(data: bytes) -> object:
    return decode_tags(data.decode("utf-8", "replace"))


def _device(
    make_parser: Callable[[], object], decode: Callable[[bytes], object]
) -> Callable[[bytes], object]:
    def run(data: bytes) -> object:
        parser: Any = make_parser()
        parser.receive_data(data)
        decoded = []
        for event in parser.events():
            if isinstance(event, Frame):
                decoded.append(decode(event.text))
        return decoded

    return run


def _printer(data: bytes) -> object:
    parser = printer.EscPosParser()
    parser.receive_data(data)
    return parser.events()


def _tr31(data: bytes) -> object:
    text = data.decode("latin-1")
    parse_tr31_header(text)
    return tr31_unwrap(KBPK, text)


_REQUEST: Final = {"4": "000000010000", "11": "000001", "41": "ATMSWTCH"}


def _network_answer(data: bytes) -> object:
    return authorization_answer(decode_message(data), _REQUEST)


_config_dir = Path(tempfile.mkdtemp(prefix="atm-fuzz-config-"))


def _config(data: bytes) -> object:
    path = _config_dir / f"fuzz-{os.getpid()}.toml"
    path.write_bytes(data)
    return load_config(path, environ={})


TARGETS: Final[dict[str, Target]] = {
    "frames_binary2": Target(_frames("binary2"), (FramingError,)),
    "frames_ascii4": Target(_frames("ascii4"), (FramingError,)),
    "iso8583": Target(_iso8583, (MessageFormatError,)),
    "field48": Target(_field48, (MessageFormatError,)),
    "card_reader": Target(_device(card_reader.CardReaderFrameParser, card_reader.decode_reply),
                          (DeviceProtocolError,)),
    "card_reader_commands": Target(
        _device(card_reader.CardReaderFrameParser, card_reader.decode_command),
        (DeviceProtocolError,)),
    "dispenser": Target(
        _device(lambda: dispenser.DispenserFrameParser(dispenser.Direction.REPLY),
                dispenser.decode_reply),
        (DeviceProtocolError,)),
    "dispenser_commands": Target(
        _device(lambda: dispenser.DispenserFrameParser(dispenser.Direction.COMMAND),
                dispenser.decode_command),
        (DeviceProtocolError,)),
    "pinpad": Target(_device(pinpad.PinPadFrameParser, pinpad.decode_device_message),
                     (DeviceProtocolError,)),
    "pinpad_commands": Target(_device(pinpad.PinPadFrameParser, pinpad.decode_command),
                              (DeviceProtocolError,)),
    # The frame text decoders on their own (a mutated frame mostly fails its check digits, so
    # the targets above rarely reach them).
    "card_reader_text": Target(card_reader.decode_reply, (DeviceProtocolError,)),
    "card_reader_command_text": Target(card_reader.decode_command, (DeviceProtocolError,)),
    "dispenser_text": Target(dispenser.decode_reply, (DeviceProtocolError,)),
    "dispenser_command_text": Target(dispenser.decode_command, (DeviceProtocolError,)),
    "pinpad_text": Target(pinpad.decode_device_message, (DeviceProtocolError,)),
    "pinpad_command_text": Target(pinpad.decode_command, (DeviceProtocolError,)),
    "printer": Target(_printer, (DeviceProtocolError,)),
    "tr31": Target(_tr31, (PrimitiveError,)),
    "network_answer": Target(_network_answer, (MessageFormatError, NetworkProtocolError)),
    "config_toml": Target(_config, (ConfigError,)),
}
