"""Transports: a pty pair opened with pyserial carries every byte value both ways (raw mode:
no ^C, XON or CR translation), reports hang-up, and keeps bytes when a read is cancelled;
modem-control lines travel out of band."""

from __future__ import annotations

import pytest
import trio

from terminals.transport import ModemLines, TransportClosed, memory_transport_pair, open_pty_pair

ALL_BYTES = bytes(range(256))


async def test_pty_carries_all_byte_values_both_ways() -> None:
    pair = open_pty_pair()
    device = pair.device_transport()
    host = pair.open_driver_transport()
    pair.close_slave_keeper()
    try:
        for sender, receiver in ((host, device), (device, host)):
            await sender.send_all(ALL_BYTES)
            received = b""
            with trio.fail_after(2):
                while len(received) < len(ALL_BYTES):
                    received += await receiver.receive_some(4096)
            assert received == ALL_BYTES
    finally:
        await host.aclose()
        await device.aclose()


async def test_hang_up_is_transport_closed_on_both_sides() -> None:
    pair = open_pty_pair()
    device = pair.device_transport()
    host = pair.open_driver_transport()
    pair.close_slave_keeper()
    await device.aclose()
    with trio.fail_after(2), pytest.raises(TransportClosed):
        await host.receive_some(16)
    await host.aclose()
    with pytest.raises(TransportClosed):
        await host.send_all(b"x")

    pair = open_pty_pair()
    device = pair.device_transport()
    host = pair.open_driver_transport()
    pair.close_slave_keeper()
    await host.aclose()
    with trio.fail_after(2), pytest.raises(TransportClosed):
        await device.receive_some(16)
    await device.aclose()


async def test_cancelled_read_loses_no_bytes() -> None:
    pair = open_pty_pair()
    device = pair.device_transport()
    host = pair.open_driver_transport()
    pair.close_slave_keeper()
    try:
        with trio.move_on_after(0.01):
            await host.receive_some(16)  # nothing there: cancelled while waiting
        await device.send_all(b"kept")
        with trio.fail_after(2):
            assert await host.receive_some(16) == b"kept"
    finally:
        await host.aclose()
        await device.aclose()


async def test_opening_a_missing_port_is_a_clear_error() -> None:
    from terminals.transport import SerialTransport

    with pytest.raises(TransportClosed, match="cannot open serial port"):
        SerialTransport.open("/dev/does-not-exist", lines=ModemLines())


async def test_modem_lines_are_shared_and_wake_waiters() -> None:
    host, device = memory_transport_pair()
    assert host.lines is device.lines
    woke = trio.Event()

    async def watch() -> None:
        await host.lines.wait_changed()
        woke.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await trio.testing.wait_all_tasks_blocked()
        device.lines.set(dsr=True)
        with trio.fail_after(1):
            await woke.wait()
    assert host.lines.snapshot() == {"dtr": False, "rts": False, "dsr": True, "cts": False}
