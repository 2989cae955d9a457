"""Card reader driver against its emulator: the customer's card flow, every injected fault, a
silent or switched-off device, line noise; in memory (fast) and over a real pty with pyserial."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from terminals.devices.card_reader import CardPosition
from terminals.drivers.card_reader import CardReaderDriver, CardReaderTiming
from terminals.drivers.errors import DeviceFault, DeviceOffline, DeviceTimeout
from terminals.drivers.link import LinkTiming
from terminals.emulators.card_reader import CardReaderEmulator, CardReaderModel
from terminals.emulators.faults import Fault, FaultSchedule, at
from terminals.transport import NoisyTransport, Transport, memory_transport_pair

from .conftest import memory_link, pty_link

TRACK2 = "6217001234567890=27122201000000000"
FAST = CardReaderTiming(
    reply_timeout_seconds=0.5,
    status_poll_seconds=0.01,
    link=LinkTiming(ack_timeout_seconds=0.2),
)


async def insert_when_enabled(model: CardReaderModel, track2: str = TRACK2) -> None:
    """The customer: wait for the shutter to open, then push the card in."""
    while not model.insert_card(track2):
        await trio.sleep(0.005)


async def card_session(host: Transport, model: CardReaderModel) -> tuple[str, bool]:
    driver = CardReaderDriver(host, timing=FAST)
    await driver.initialise()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(insert_when_enabled, model)
        assert await driver.wait_for_card(timeout_seconds=2)
    track = await driver.read_track2()
    taken = await driver.return_card(take_timeout_seconds=0.3)
    return track, taken


async def test_card_flow_in_memory() -> None:
    model = CardReaderModel()
    async with memory_link(CardReaderEmulator(model).serve) as host:
        track, taken = await card_session(host, model)
    assert (track, taken) == (TRACK2, True)
    assert model.card is CardPosition.NO_CARD and model.retained_cards == 0


async def test_card_flow_over_a_real_pty() -> None:
    model = CardReaderModel()
    async with pty_link(CardReaderEmulator(model).serve) as host:
        track, taken = await card_session(host, model)
    assert (track, taken) == (TRACK2, True)


async def test_card_not_taken_is_retained(autojump_clock: MockClock) -> None:
    model = CardReaderModel(FaultSchedule.of(at(Fault.CARD_NOT_TAKEN, 1)))
    async with memory_link(CardReaderEmulator(model).serve) as host:
        _track, taken = await card_session(host, model)
    assert taken is False
    assert model.retained_cards == 1 and model.card is CardPosition.NO_CARD


async def test_unreadable_track_is_a_device_fault_20() -> None:
    model = CardReaderModel(FaultSchedule.of(at(Fault.UNREADABLE_TRACK, 1)))
    model.entry_enabled = True
    model.insert_card(TRACK2)
    async with memory_link(CardReaderEmulator(model).serve) as host:
        driver = CardReaderDriver(host, timing=FAST)
        with pytest.raises(DeviceFault) as caught:
            await driver.read_track2()
        assert caught.value.code == "20"
        assert await driver.read_track2() == TRACK2  # a second swipe-read works


async def test_card_jam_blocks_movement_until_initialise_captures() -> None:
    model = CardReaderModel(FaultSchedule.of(at(Fault.CARD_JAM, 1)))
    model.entry_enabled = True
    model.insert_card(TRACK2)
    async with memory_link(CardReaderEmulator(model).serve) as host:
        driver = CardReaderDriver(host, timing=FAST)
        with pytest.raises(DeviceFault) as caught:
            await driver.eject()
        assert caught.value.code == "10"
        with pytest.raises(DeviceFault):
            await driver.read_track2()
        status = await driver.initialise(card_action="capture")
    assert status.card is CardPosition.NO_CARD and model.retained_cards == 1


async def test_silent_reader_times_out_instead_of_hanging(autojump_clock: MockClock) -> None:
    model = CardReaderModel(FaultSchedule.of(at(Fault.CARD_READER_SILENT, 1)))
    async with memory_link(CardReaderEmulator(model).serve) as host:
        driver = CardReaderDriver(host, timing=FAST)
        started = trio.current_time()
        with trio.fail_after(3):
            with pytest.raises(DeviceTimeout) as caught:
                await driver.status()
        assert trio.current_time() - started == pytest.approx(FAST.reply_timeout_seconds)
        assert caught.value.maybe_executed
        assert (await driver.status()).card is CardPosition.NO_CARD  # next command works


async def test_powered_off_reader_is_offline_by_dsr(autojump_clock: MockClock) -> None:
    model = CardReaderModel()
    async with memory_link(CardReaderEmulator(model).serve) as host:
        driver = CardReaderDriver(host, timing=FAST)
        assert host.lines.dsr
        model.power_off()
        with pytest.raises(DeviceOffline):
            await driver.status()
        model.power_on()
        assert (await driver.status()).card is CardPosition.NO_CARD


async def test_commands_survive_a_noisy_line_through_nak_and_retry(
    autojump_clock: MockClock,
) -> None:
    model = CardReaderModel()
    host, device = memory_transport_pair()
    noisy_host = NoisyTransport(host, seed=7, corrupt_probability=0.1)
    noisy_device = NoisyTransport(device, seed=8, corrupt_probability=0.1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(CardReaderEmulator(model).serve, noisy_device)
        driver = CardReaderDriver(noisy_host, timing=FAST)
        for _ in range(30):
            assert (await driver.status()).card is CardPosition.NO_CARD
        nursery.cancel_scope.cancel()
    assert noisy_host.chunks_corrupted + noisy_device.chunks_corrupted > 3
