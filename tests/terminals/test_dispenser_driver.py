"""Dispenser driver against its emulator: full and partial dispenses, every injected fault, notes
not taken (retract), a dispenser that goes quiet mid-dispense (never resent), and a real pty."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from terminals.devices.dispenser import CassetteState, DispenserError
from terminals.devices.events import ControlCode
from terminals.drivers.dispenser import DispenserDriver, DispenserTiming
from terminals.drivers.errors import DeviceFault, DeviceTimeout
from terminals.drivers.link import LinkTiming
from terminals.emulators.dispenser import Cassette, DispenserEmulator, DispenserModel
from terminals.emulators.faults import Fault, FaultRule, FaultSchedule, at
from terminals.transport.base import Transport

from .conftest import memory_link, pty_link

FAST = DispenserTiming(
    dispense_timeout_seconds=0.5,
    reply_timeout_seconds=0.5,
    status_poll_seconds=0.01,
    link=LinkTiming(ack_timeout_seconds=0.2),
)
DENOMINATIONS = (10000, 5000, 2000, 1000)


def loaded(count: int = 100, faults: FaultSchedule | None = None) -> DispenserModel:
    cassettes = [Cassette(d, count=count) for d in DENOMINATIONS]
    return DispenserModel(cassettes, faults)


async def test_full_dispense_in_memory_and_notes_taken() -> None:
    model = loaded()
    async with memory_link(DispenserEmulator(model).serve) as host:
        driver = DispenserDriver(host, timing=FAST)
        info = await driver.cassette_info()
        assert [c.denomination for c in info] == list(DENOMINATIONS)
        result = await driver.dispense([3, 1, 0, 2])
        assert result.complete and result.exited == (3, 1, 0, 2)
        assert result.amount([c.denomination for c in info]) == 37000
        assert await driver.present(take_timeout_seconds=0.5) == 0
    assert model.notes_taken == [3, 1, 0, 2]
    assert [c.count for c in model.cassettes] == [97, 99, 100, 98]


async def test_dispense_over_a_real_pty() -> None:
    model = loaded()
    async with pty_link(DispenserEmulator(model).serve) as host:
        driver = DispenserDriver(host, timing=FAST)
        result = await driver.dispense([1, 2, 3, 4])
        status = await driver.status()
    assert result.exited == (1, 2, 3, 4) and not status.notes_in_exit


async def test_pick_error_gives_a_partial_dispense() -> None:
    # The 4th pick from cassette 1 fails: 3 notes out, nothing from the later cassettes.
    model = loaded(faults=FaultSchedule.of(at(Fault.PICK_ERROR, 4, cassette=1)))
    async with memory_link(DispenserEmulator(model).serve) as host:
        result = await DispenserDriver(host, timing=FAST).dispense([5, 2, 0, 0])
    assert result.error is DispenserError.PICKUP_ERROR and result.failed_cassette == 1
    assert result.exited == (3, 0, 0, 0)
    assert model.cassettes[0].count == 97


async def test_note_jam_blocks_until_purge() -> None:
    model = loaded(faults=FaultSchedule.of(at(Fault.NOTE_JAM, 2)))
    async with memory_link(DispenserEmulator(model).serve) as host:
        driver = DispenserDriver(host, timing=FAST)
        result = await driver.dispense([3, 0, 0, 0])
        assert result.error is DispenserError.JAM_AT_CHECK_SENSOR
        assert result.exited == (1, 0, 0, 0) and result.checked == (2, 0, 0, 0)
        await driver.present(take_timeout_seconds=0.2)
        assert (await driver.status()).check_sensor_blocked
        blocked = await driver.dispense([1, 0, 0, 0])
        assert blocked.error is DispenserError.JAM_AT_CHECK_SENSOR and blocked.exited == (0,) * 4
        await driver.purge()
        assert (await driver.dispense([1, 0, 0, 0])).complete
    assert model.reject_bin[0] == 1


async def test_cassette_states_empty_missing_low() -> None:
    faults = FaultSchedule.of(
        at(Fault.CASSETTE_EMPTY, 1, cassette=2),
        at(Fault.CASSETTE_MISSING, 1, cassette=3),
        at(Fault.CASSETTE_LOW, 1, cassette=4),
    )
    model = loaded(faults=faults)
    async with memory_link(DispenserEmulator(model).serve) as host:
        driver = DispenserDriver(host, timing=FAST)
        empty = await driver.dispense([0, 1, 0, 0])
        assert (empty.error, empty.failed_cassette) == (DispenserError.CASSETTE_EMPTY, 2)
        missing = await driver.dispense([0, 0, 1, 0])
        assert (missing.error, missing.failed_cassette) == (
            DispenserError.CASSETTE_NOT_RECOGNISED,
            3,
        )
        await driver.present(take_timeout_seconds=0.1)
        assert (await driver.dispense([0, 0, 0, 1])).complete
        states = (await driver.status()).cassettes
    assert states == (
        CassetteState.OK,
        CassetteState.EMPTY,
        CassetteState.MISSING,
        CassetteState.LOW,
    )


async def test_rejected_double_notes_are_replaced_and_counted() -> None:
    model = loaded(faults=FaultSchedule.of(at(Fault.DOUBLE_NOTE_REJECT, 1, 3)))
    async with memory_link(DispenserEmulator(model).serve) as host:
        result = await DispenserDriver(host, timing=FAST).dispense([4, 0, 0, 0])
    assert result.complete and result.exited == (4, 0, 0, 0)
    assert result.rejected == (2, 0, 0, 0) and result.checked == (6, 0, 0, 0)


async def test_too_many_rejects_stop_with_over_reject() -> None:
    model = loaded(faults=FaultSchedule.of(FaultRule(Fault.DOUBLE_NOTE_REJECT, probability=1.0)))
    async with memory_link(DispenserEmulator(model).serve) as host:
        result = await DispenserDriver(host, timing=FAST).dispense([2, 0, 0, 0])
    assert result.error is DispenserError.OVER_REJECT and result.exited == (0,) * 4
    assert result.rejected[0] == 11


async def test_notes_not_taken_are_retracted(autojump_clock: MockClock) -> None:
    model = loaded(faults=FaultSchedule.of(at(Fault.NOTES_NOT_TAKEN, 1)))
    async with memory_link(DispenserEmulator(model).serve) as host:
        driver = DispenserDriver(host, timing=FAST)
        await driver.dispense([2, 0, 0, 0])
        started = trio.current_time()
        assert await driver.present(take_timeout_seconds=0.1) == 2
        assert trio.current_time() - started == pytest.approx(0.1, abs=0.05)  # retracted then
        assert (await driver.dispense([1, 0, 0, 0])).complete
        assert await driver.present(take_timeout_seconds=0.1) == 0
    assert model.retract_bin == 2 and model.notes_taken == [1, 0, 0, 0]


async def test_notes_left_in_exit_refuse_a_new_dispense() -> None:
    model = loaded()
    model.auto_take_notes = False
    async with memory_link(DispenserEmulator(model).serve) as host:
        driver = DispenserDriver(host, timing=FAST)
        await driver.dispense([1, 0, 0, 0])
        second = await driver.dispense([1, 0, 0, 0])
    assert second.error is DispenserError.NOTES_IN_EXIT and model.cassettes[0].count == 99


async def test_silent_dispenser_times_out_and_the_dispense_is_not_repeated(
    autojump_clock: MockClock,
) -> None:
    model = loaded(faults=FaultSchedule.of(at(Fault.DISPENSER_SILENT, 1)))
    async with memory_link(DispenserEmulator(model).serve) as host:
        driver = DispenserDriver(host, timing=FAST)
        started = trio.current_time()
        with trio.fail_after(3), pytest.raises(DeviceTimeout) as caught:
            await driver.dispense([2, 0, 0, 0])
        assert trio.current_time() - started == pytest.approx(FAST.dispense_timeout_seconds)
        assert caught.value.maybe_executed
        # The device said nothing; nothing was resent, so nothing (or one dispense) happened.
        assert (await driver.status()).error is DispenserError.GOOD
    assert model.cassettes[0].count == 100


async def test_purge_fault_and_retract_errors_are_typed() -> None:
    model = loaded()
    async with memory_link(DispenserEmulator(model).serve) as host:
        driver = DispenserDriver(host, timing=FAST)
        with pytest.raises(ValueError):
            await driver.dispense([61, 0, 0, 0])
        assert await driver.retract() == 0
        assert isinstance(DeviceFault("2", "x"), DeviceFault)


class LateAckTransport:
    """The host end of a line whose ACKs of replies are late (a loaded host, a slow pty).

    The dispenser resends a reply it has no ACK for within `reply_ack_timeout_seconds`, so the
    host finds a second copy of the previous reply waiting when it sends its next command.
    """

    def __init__(self, inner: Transport, *, late_acks: int, delay_seconds: float) -> None:
        self._inner = inner
        self.late_acks = late_acks
        self._delay_seconds = delay_seconds
        self.lines = inner.lines

    async def send_all(self, data: bytes) -> None:
        if data == bytes([ControlCode.ACK]) and self.late_acks:
            self.late_acks -= 1
            await trio.sleep(self._delay_seconds)
        await self._inner.send_all(data)

    async def receive_some(self, max_bytes: int) -> bytes:
        return await self._inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_resent_status_reply_is_not_taken_for_the_retract_reply(
    autojump_clock: MockClock,
) -> None:
    # CI flake: the ACK of a status reply came after the dispenser's 0.5 s, the dispenser sent
    # the status again, and the driver took that copy as the answer to RETRACT.
    model = loaded(faults=FaultSchedule.of(at(Fault.NOTES_NOT_TAKEN, 1)))
    async with memory_link(DispenserEmulator(model).serve) as line:
        host = LateAckTransport(line, late_acks=0, delay_seconds=0.7)
        driver = DispenserDriver(host, timing=FAST)
        await driver.dispense([2, 0, 0, 0])
        host.late_acks = 1  # the status reply's ACK is late
        assert (await driver.status()).notes_in_exit
        assert await driver.retract() == 2
    assert model.retract_bin == 2


async def test_a_resent_dispense_reply_is_not_taken_for_the_next_dispense(
    autojump_clock: MockClock,
) -> None:
    model = loaded()
    async with memory_link(DispenserEmulator(model).serve) as line:
        host = LateAckTransport(line, late_acks=1, delay_seconds=0.7)
        driver = DispenserDriver(host, timing=FAST)
        first = await driver.dispense([1, 0, 0, 0])
        model.take_notes()
        second = await driver.dispense([0, 3, 0, 0])
    assert first.exited == (1, 0, 0, 0)
    assert second.exited == (0, 3, 0, 0)
    assert [c.count for c in model.cassettes] == [99, 97, 100, 100]
