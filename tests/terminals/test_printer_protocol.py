"""ESC/POS subset: golden bytes written by hand from the command reference, compared byte for
byte; the emulator-side parser reads them back; properties: round trip of any receipt, byte at
a time, unknown commands and junk skipped; status bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminals.devices import printer as proto
from terminals.devices.errors import LocalProtocolError, RemoteProtocolError
from terminals.devices.printer import (
    Alignment,
    ChineseMode,
    Cut,
    EscPosParser,
    Initialise,
    PaperStatus,
    PrintAndFeed,
    ReceiptLine,
    SetAlignment,
    SetBold,
    StatusKind,
    StatusRequest,
    Text,
    Unsupported,
)
from terminals.emulators.printer import PrinterModel

# Golden receipt: a centred bold "ATM" line, then "取款" (withdrawal, in Chinese) left aligned.
#   1B 40          ESC @      initialise
#   1B 61 01       ESC a 1    centre
#   1B 45 01       ESC E 1    bold on
#   41 54 4D       "ATM"
#   0A             LF         print the line
#   1B 61 00       ESC a 0    left
#   1B 45 00       ESC E 0    bold off
#   1C 26          FS &       Chinese mode on
#   C8 A1 BF EE    "取款" in GBK (取 = C8A1, 款 = BFEE)
#   1C 2E          FS .       Chinese mode off
#   0A             LF
#   1B 45 00 1B 61 00         bold off, left (the encoder's tidy-up before the cut)
#   1D 56 42 03    GS V 66 3  feed 3 lines, partial cut
GOLDEN_RECEIPT = bytes.fromhex(
    "1B40 1B6101 1B4501 41544D 0A 1B6100 1B4500 1C26 C8A1BFEE 1C2E 0A 1B4500 1B6100 1D564203"
)
LINES = [ReceiptLine("ATM", Alignment.CENTRE, bold=True), ReceiptLine("取款")]


def test_golden_receipt_bytes() -> None:
    assert proto.encode_receipt(LINES) == GOLDEN_RECEIPT


def test_golden_receipt_parses_to_events() -> None:
    parser = EscPosParser()
    parser.receive_data(GOLDEN_RECEIPT)
    assert parser.events() == [
        Initialise(),
        SetAlignment(Alignment.CENTRE),
        SetBold(True),
        Text("ATM"),
        PrintAndFeed(1),
        SetAlignment(Alignment.LEFT),
        SetBold(False),
        ChineseMode(True),
        Text("取款"),
        ChineseMode(False),
        PrintAndFeed(1),
        SetBold(False),
        SetAlignment(Alignment.LEFT),
        Cut(partial=True, feed_lines=3),
    ]


def test_emulator_reads_the_golden_receipt_back() -> None:
    model = PrinterModel()
    assert model.receive(GOLDEN_RECEIPT) == b""
    (receipt,) = model.receipts
    assert receipt.lines == LINES
    assert receipt.render(width=9) == "   ATM\n取款"


def test_status_request_golden_and_paper_bits() -> None:
    # DLE EOT 4 = 10 04 04. Reply: fixed bits 0x12; near end adds 0x0C -> 0x1E; paper end
    # adds 0x60 -> 0x7E.
    assert proto.status_request(StatusKind.PAPER) == bytes.fromhex("100404")
    assert proto.encode_paper_status(PaperStatus(False, False)) == 0x12
    assert proto.encode_paper_status(PaperStatus(True, False)) == 0x1E
    assert proto.encode_paper_status(PaperStatus(True, True)) == 0x7E
    assert proto.decode_paper_status(0x1E) == PaperStatus(near_end=True, out=False)
    for bad in (0x00, 0x13, 0x92, 0xFF):
        with pytest.raises(RemoteProtocolError):
            proto.decode_paper_status(bad)


def test_cut_and_feed_variants() -> None:
    parser = EscPosParser()
    parser.receive_data(bytes.fromhex("1D5600 1D5631 1B6405 1B6132 100401"))
    assert parser.events() == [
        Cut(partial=False),
        Cut(partial=True),
        PrintAndFeed(5),
        SetAlignment(Alignment.RIGHT),
        StatusRequest(StatusKind.PRINTER),
    ]


def test_unknown_commands_are_skipped_and_parsing_goes_on() -> None:
    parser = EscPosParser()
    parser.receive_data(bytes.fromhex("1B21 00 1B6109") + b"OK\n")
    events = parser.events()
    assert isinstance(events[0], Unsupported) and isinstance(events[-1], PrintAndFeed)
    assert Text("OK") in events


def test_encoder_refuses_what_it_cannot_say() -> None:
    with pytest.raises(LocalProtocolError):
        proto.text("two\nlines")
    with pytest.raises(LocalProtocolError):
        proto.feed(256)


lines = st.lists(
    st.builds(
        ReceiptLine,
        st.text(alphabet=st.sampled_from("ABCxyz019 *.-:/余额取款转账王"), max_size=40),
        st.sampled_from(list(Alignment)),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150)
@given(lines)
def test_any_receipt_round_trips_through_the_emulator(receipt_lines: list[ReceiptLine]) -> None:
    model = PrinterModel()
    model.receive(proto.encode_receipt(receipt_lines))
    assert model.receipts[0].lines == receipt_lines


@settings(max_examples=100)
@given(lines)
def test_byte_at_a_time_gives_the_same_receipt(receipt_lines: list[ReceiptLine]) -> None:
    model = PrinterModel()
    for byte in proto.encode_receipt(receipt_lines):
        model.receive(bytes([byte]))
    assert model.receipts[0].lines == receipt_lines


@settings(max_examples=100)
@given(st.binary(max_size=64), lines)
def test_junk_before_a_job_does_not_spoil_it(junk: bytes, receipt_lines: list[ReceiptLine]) -> None:
    model = PrinterModel()
    # Junk may open Chinese mode or leave a command half-sent. A few NULs complete any pending
    # command, and a full cut ends the junk's piece of paper; then the real job follows.
    model.receive(junk + b"\x00\x00\x00" + proto.cut(partial=False))
    model.receipts.clear()
    model.receive(proto.encode_receipt(receipt_lines))
    assert model.receipts[-1].lines == receipt_lines
