"""Chip commands of the card reader protocol: golden frames written by hand (layout of
terminals/devices/card_reader.py, CRCs shown with the bit-serial reference), then the driver
against the emulator holding a chip card, in memory and over a real pty, with the chip faults."""

from __future__ import annotations

import pytest
import trio

from terminals.devices import card_reader as proto
from terminals.devices.card_reader import (
    CardPosition,
    Command,
    NegativeReply,
    PositiveReply,
    ReaderCommand,
    ReaderErrorCode,
    ReaderStatus,
)
from terminals.drivers.card_reader import CardReaderDriver
from terminals.drivers.errors import DeviceFault
from terminals.emulators.card_reader import CardReaderEmulator, CardReaderModel
from terminals.emulators.chip_card import ChipCard
from terminals.emulators.faults import Fault, FaultSchedule, at
from terminals.emv import apdu
from terminals.emv.apdu import CryptogramType, ResponseApdu

from .conftest import memory_link, pty_link
from .crc_reference import crc16_xmodem_bitwise
from .test_card_reader_driver import FAST

# Power on: "C" "I" "0"  ->  F2 | 0003 | 43 49 30 | CRC 44DA
GOLDEN_ACTIVATE = bytes.fromhex("F2 0003 434930 44DA")
# ATR reply: "P" "I0" st1 '0' st0 '2' (card inside) + ATR 3B 60 00 00 -> 9 bytes of text.
GOLDEN_ATR_REPLY = bytes.fromhex("F2 0009 5049303032 3B600000 39FA")
# No ATR: "N" "I0" "60".
GOLDEN_NO_ATR = bytes.fromhex("F2 0005 4E49303630 9EC4")
# APDU: "C" "I3" + SELECT 00 A4 04 00 08 A000000333010101 00 -> 3 + 14 = 17 = 0x11 bytes.
GOLDEN_SELECT = bytes.fromhex("F2 0011 434933 00A4040008A00000033301010100 D306")
# Chip silent during an APDU: "N" "I3" "61".
GOLDEN_CHIP_SILENT = bytes.fromhex("F2 0005 4E49333631 D7B5")

IMK_HEX = "0123456789ABCDEFFEDCBA9876543210"


def test_golden_chip_frames() -> None:
    assert proto.encode_frame(Command(ReaderCommand.ICC_ACTIVATE).encode()) == GOLDEN_ACTIVATE
    atr = PositiveReply(ReaderCommand.ICC_ACTIVATE, ReaderStatus(CardPosition.INSIDE),
                        bytes.fromhex("3B600000"))
    assert proto.encode_frame(atr.encode()) == GOLDEN_ATR_REPLY
    no_atr = NegativeReply(ReaderCommand.ICC_ACTIVATE, ReaderErrorCode.ICC_NO_ATR)
    assert proto.encode_frame(no_atr.encode()) == GOLDEN_NO_ATR
    select = Command(ReaderCommand.ICC_APDU, apdu.select(bytes.fromhex("A000000333010101"))
                     .encode())
    assert proto.encode_frame(select.encode()) == GOLDEN_SELECT
    silent = NegativeReply(ReaderCommand.ICC_APDU, ReaderErrorCode.ICC_NO_RESPONSE)
    assert proto.encode_frame(silent.encode()) == GOLDEN_CHIP_SILENT
    for frame in (GOLDEN_ACTIVATE, GOLDEN_ATR_REPLY, GOLDEN_NO_ATR, GOLDEN_SELECT,
                  GOLDEN_CHIP_SILENT):
        assert crc16_xmodem_bitwise(frame[:-2]) == int.from_bytes(frame[-2:], "big")
    assert proto.decode_reply(GOLDEN_ATR_REPLY[3:-2]) == atr
    assert proto.decode_command(GOLDEN_SELECT[3:-2]) == select


def card() -> ChipCard:
    return ChipCard.personalise(IMK_HEX, "6228480000000000108", "3012", "01")


async def insert(model: CardReaderModel, chip: ChipCard | None) -> None:
    track2 = chip.track2 if chip else "6228480000000000017=30121010000000"
    while not model.insert_card(track2, chip):
        await trio.sleep(0.005)


async def chip_transaction(driver: CardReaderDriver, model: CardReaderModel,
                           chip: ChipCard | None) -> tuple[bytes, list[ResponseApdu]]:
    await driver.initialise()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(insert, model, chip)
        assert await driver.wait_for_card(timeout_seconds=2)
    atr = await driver.activate_chip()
    answers = []
    for command in (apdu.select(bytes.fromhex("A000000333010101")),
                    apdu.get_processing_options(), apdu.read_record(1, 1),
                    apdu.generate_ac(CryptogramType.ARQC, bytes(29))):
        answers.append(ResponseApdu.decode(await driver.transmit_apdu(command.encode())))
    await driver.deactivate_chip()
    return atr, answers


@pytest.mark.parametrize("link", [memory_link, pty_link])
async def test_apdus_through_the_reader(link: object) -> None:
    model, chip = CardReaderModel(), card()
    async with link(CardReaderEmulator(model).serve) as host:  # type: ignore[operator]
        atr, answers = await chip_transaction(CardReaderDriver(host, timing=FAST), model, chip)
    assert atr == bytes.fromhex("3B600000")
    assert [answer.sw for answer in answers] == [0x9000] * 4
    assert chip.atc == 1 and chip.decisions[-1].returned is CryptogramType.ARQC
    assert not model.chip_powered


async def test_stripe_card_and_mute_chip_give_no_atr() -> None:
    for chip, faults in ((None, FaultSchedule()), (card(), FaultSchedule.of(
            at(Fault.CHIP_MUTE, 1)))):
        model = CardReaderModel(faults)
        async with memory_link(CardReaderEmulator(model).serve) as host:
            driver = CardReaderDriver(host, timing=FAST)
            with pytest.raises(DeviceFault) as raised:
                await chip_transaction(driver, model, chip)
        assert raised.value.code == "60"


async def test_chip_that_stops_answering_at_generate_ac() -> None:
    model, chip = CardReaderModel(FaultSchedule.of(at(Fault.CHIP_NO_ANSWER, 1))), card()
    async with memory_link(CardReaderEmulator(model).serve) as host:
        driver = CardReaderDriver(host, timing=FAST)
        with pytest.raises(DeviceFault) as raised:
            await chip_transaction(driver, model, chip)
        assert raised.value.code == "61"
        # The reader powered the chip off: further APDUs are a sequence error until power-on.
        with pytest.raises(DeviceFault) as again:
            await driver.transmit_apdu(apdu.select(b"\xA0\x00").encode())
        assert again.value.code == "02"
    assert chip.decisions == []
