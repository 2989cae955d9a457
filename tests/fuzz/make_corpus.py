"""Regenerate the seed corpus (``python -m tests.fuzz.make_corpus``): valid inputs for every
target, built by the project's encoders or taken from the hand-worked golden values of the
protocol tests, so mutations start from the shapes the decoders really see."""

from __future__ import annotations

import shutil
from typing import Any

from switch.hsm.primitives.mac import retail_mac
from switch.hsm.primitives.tr31 import Tr31Header, tr31_wrap
from switch.protocol.framing import encode_frame
from switch.protocol.message import encode_message
from terminals.devices.events import Frame
from tests.core.test_netmgmt import WITHDRAWAL_FIELDS
from tests.fuzz.engine import CORPUS
from tests.fuzz.targets import KBPK
from tests.terminals import (
    test_card_reader_protocol as reader,
)
from tests.terminals import (
    test_dispenser_protocol as dispenser,
)
from tests.terminals import (
    test_pinpad_protocol as pinpad,
)
from tests.terminals import (
    test_printer_protocol as printer,
)

MAC_KEY = bytes.fromhex("1111111111111111FEDCBA9876543210")


def messages() -> list[bytes]:
    sign_on = encode_message("0800", {"7": "0615103000", "11": "000001", "41": "ATM00001",
                                      "70": "001"})
    request = {**WITHDRAWAL_FIELDS, "7": "0615103000", "11": "000002", "41": "ATM00001",
               "35": "6225880123456789=30121010000000", "48": "LG002enTX005hello"}
    withdrawal = encode_message("0200", request,
                                mac=lambda d: retail_mac(MAC_KEY, d).hex().upper())
    answer = encode_message("0210", {"4": "000000010000", "11": "000001", "41": "ATMSWTCH",
                                     "38": "A12345", "39": "00",
                                     "54": "1001156C0000000100001002156C000000010000"},
                            mac=lambda d: retail_mac(MAC_KEY, d).hex().upper())
    reversal = encode_message("0420", {"3": "011000", "4": "000000010000", "7": "0615103100",
                                       "11": "000003", "32": "123456", "37": "061510000001",
                                       "39": "68", "41": "ATM00001", "49": "156",
                                       "90": "0200000002061510300000000123456" + "0" * 11,
                                       "128": "0" * 16})
    return [sign_on, withdrawal, answer, reversal]


def tr31_blocks() -> list[bytes]:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    return [tr31_wrap(KBPK, Tr31Header("B", usage, "T", mode, "00", "N"), key).encode()
            for usage, mode in (("P0", "E"), ("M3", "C"), ("K0", "B"))]


CONFIGS = [
    b'[server]\nport = 8583\nrequest_deadline_s = 5.0\nnot_signed_on_max = 64\n',
    b'[database]\ndsn = "postgresql://atm@db/atm"\npool_size_max = 16\n[hsm]\ntest_mode = false\n',
    b'[networks.routes]\n"622126" = "cup"\n\n[networks.instances.cup]\nkind = "iso_host"\n'
    b'host = "10.0.0.1"\nport = 9583\ninsecure = true\nstand_in_floor_minor = 20000\n',
    b'[authorization]\nhold_expiry_s = 600\ndaily_withdrawal_count = 5\n',
]


def corpus() -> dict[str, list[bytes]]:
    frames = messages()
    return {
        "frames_binary2": [encode_frame(m) for m in frames] + [b"".join(map(encode_frame, frames))],
        "frames_ascii4": [encode_frame(m, "ascii4") for m in frames],
        "iso8583": frames,
        "network_answer": [frames[2]],
        "field48": [b"LG002enTX005hello", "PN005王**".encode(), b"MS022261129D000000010000ATM"],
        "card_reader": [reader.GOLDEN_STATUS_REPLY, reader.GOLDEN_READ_ERROR_REPLY],
        "card_reader_commands": [reader.GOLDEN_STATUS_COMMAND],
        "dispenser": [dispenser.GOLDEN_DISPENSE_REPLY, dispenser.GOLDEN_PARTIAL_REPLY,
                      dispenser.GOLDEN_STATUS_REPLY],
        "dispenser_commands": [dispenser.GOLDEN_STATUS_COMMAND, dispenser.GOLDEN_DISPENSE_COMMAND],
        "pinpad": [pinpad.GOLDEN_STATUS_REPLY, pinpad.GOLDEN_KEY_EVENT],
        "pinpad_commands": [pinpad.GOLDEN_STATUS_COMMAND],
        "card_reader_text": [b"P1002", b"N6202", b"P62021;6225880123456789=3012101?"],
        "card_reader_command_text": [b"C10", b"C62", b"C30", b"C:0"],
        "dispenser_text": _texts(dispenser.DispenserFrameParser(dispenser.Direction.REPLY),
                                 [dispenser.GOLDEN_DISPENSE_REPLY, dispenser.GOLDEN_PARTIAL_REPLY,
                                  dispenser.GOLDEN_STATUS_REPLY]),
        "dispenser_command_text": _texts(
            dispenser.DispenserFrameParser(dispenser.Direction.COMMAND),
            [dispenser.GOLDEN_STATUS_COMMAND, dispenser.GOLDEN_DISPENSE_COMMAND]),
        "pinpad_text": [b"ST001110", b"EV*", b"PB40"],
        "pinpad_command_text": [b"ST", b"PE0406030160000000000000000"],
        "printer": [printer.GOLDEN_RECEIPT],
        "tr31": tr31_blocks(),
        "config_toml": CONFIGS,
    }


def _texts(parser: Any, frames: list[bytes]) -> list[bytes]:
    """The text of each golden frame, as the frame parser hands it to the decoder."""
    parser.receive_data(b"".join(frames))
    return [event.text for event in parser.events() if isinstance(event, Frame)]


def main() -> None:
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    for name, seeds in corpus().items():
        folder = CORPUS / name
        folder.mkdir(parents=True)
        for index, seed in enumerate(seeds):
            (folder / f"seed-{index:02d}.bin").write_bytes(seed)


if __name__ == "__main__":
    main()
