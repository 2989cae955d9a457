"""All four device emulators on pty pairs: what the simulator and the demo plug drivers into.

`start_device_bench` starts the emulators in the caller's nursery and returns the slave paths a
driver opens with pyserial (`SerialTransport.open(path, lines=bench.lines[name])`), exactly as the
ATM firmware would open its COM ports.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from terminals.emulators.card_reader import CardReaderEmulator, CardReaderModel
from terminals.emulators.dispenser import Cassette, DispenserEmulator, DispenserModel
from terminals.emulators.faults import FaultSchedule
from terminals.emulators.pinpad import PinPadEmulator
from terminals.emulators.printer import PrinterEmulator, PrinterModel
from terminals.transport.base import ModemLines, Transport, TransportClosed
from terminals.transport.pty import PtyPair, open_pty_pair

DEVICE_NAMES = ("card_reader", "dispenser", "printer", "pinpad")


@dataclass
class DeviceBench:
    """The emulated devices of one ATM and where to reach them."""

    card_reader: CardReaderModel
    dispenser: DispenserModel
    printer: PrinterModel
    pinpad: PinPadEmulator
    paths: dict[str, str] = field(default_factory=dict)
    lines: dict[str, ModemLines] = field(default_factory=dict)
    _pairs: list[PtyPair] = field(default_factory=list)

    def close(self) -> None:
        """Release the slave handles kept open so the paths stayed valid."""
        for pair in self._pairs:
            pair.close_slave_keeper()


def default_cassettes() -> list[Cassette]:
    """CNY 100, 50, 20 and 10 notes, 500 of each."""
    return [Cassette(denomination, "156", count=500) for denomination in (10000, 5000, 2000, 1000)]


async def start_device_bench(
    nursery: trio.Nursery,
    *,
    faults: FaultSchedule | None = None,
    cassettes: list[Cassette] | None = None,
    customer_pin: str | None = "1234",
) -> DeviceBench:
    """Start the four emulators on ptys in `nursery` (one fault schedule shared by all)."""
    schedule = faults or FaultSchedule()
    bench = DeviceBench(
        card_reader=CardReaderModel(schedule),
        dispenser=DispenserModel(cassettes or default_cassettes(), schedule),
        printer=PrinterModel(schedule),
        pinpad=PinPadEmulator(faults=schedule, customer_pin=customer_pin),
    )
    servers: dict[str, Callable[[Transport], Awaitable[None]]] = {
        "card_reader": CardReaderEmulator(bench.card_reader).serve,
        "dispenser": DispenserEmulator(bench.dispenser).serve,
        "printer": PrinterEmulator(bench.printer).serve,
        "pinpad": bench.pinpad.serve,
    }
    for name in DEVICE_NAMES:
        pair = open_pty_pair()
        bench._pairs.append(pair)
        bench.paths[name], bench.lines[name] = pair.slave_path, pair.lines
        nursery.start_soon(_serve_until_hang_up, servers[name], pair)
    await trio.sleep(0)  # let each emulator raise DSR
    return bench


Serve = Callable[[Transport], Awaitable[None]]


async def _serve_until_hang_up(serve: Serve, pair: PtyPair) -> None:
    transport = pair.device_transport()
    try:
        await serve(transport)
    except TransportClosed:
        pass
    finally:
        with trio.CancelScope(shield=True):
            await transport.aclose()


def describe(bench: DeviceBench) -> str:
    """One line per device: name and serial path (for `atm-sim` output and logs)."""
    return os.linesep.join(f"{name}: {bench.paths[name]}" for name in DEVICE_NAMES)
