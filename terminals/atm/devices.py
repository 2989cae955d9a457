"""The ATM's four serial devices, opened by path like COM ports, and the EPP's part in security.

``open_atm_devices`` opens each port with pyserial (``SerialTransport``) and builds the drivers;
``EppSecurity`` lets the host link MAC with, and load working keys into, the EPP, so the TAK and
TPK never exist in clear outside it. ``install_tmk`` is the key ceremony: the TMK is split into
two components (as custodians would bring it) and loaded with its KCV.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from switch.hsm.primitives import kcv_tdes, xor_bytes
from terminals.devices.pinpad import KeySlot
from terminals.drivers.card_reader import CardReaderDriver, CardReaderTiming
from terminals.drivers.dispenser import DispenserDriver, DispenserTiming
from terminals.drivers.pinpad import PinPadDriver
from terminals.drivers.printer import PrinterDriver
from terminals.transport.base import ModemLines
from terminals.transport.pty import SerialTransport

tmk_bytes = 16  # double-length TDES (spec 7)
# How often the firmware polls the reader and dispenser while the customer acts (seconds).
device_poll_seconds = 0.02


@dataclass
class AtmDevices:
    card_reader: CardReaderDriver
    dispenser: DispenserDriver
    printer: PrinterDriver
    pinpad: PinPadDriver


@contextlib.asynccontextmanager
async def open_atm_devices(
    paths: Mapping[str, str], lines: Mapping[str, ModemLines]
) -> AsyncIterator[AtmDevices]:
    """Open the four serial ports and their drivers for the life of the block."""
    ports = {name: SerialTransport.open(path, lines=lines[name]) for name, path in paths.items()}
    try:
        async with PinPadDriver.open(ports["pinpad"]) as pinpad:
            yield AtmDevices(
                card_reader=CardReaderDriver(
                    ports["card_reader"],
                    timing=CardReaderTiming(status_poll_seconds=device_poll_seconds)),
                dispenser=DispenserDriver(
                    ports["dispenser"],
                    timing=DispenserTiming(status_poll_seconds=device_poll_seconds)),
                printer=PrinterDriver(ports["printer"]),
                pinpad=pinpad,
            )
    finally:
        for port in ports.values():
            await port.aclose()


def split_tmk(tmk_hex: str) -> tuple[list[str], str]:
    """Two random components XORing to the TMK, and the TMK's KCV (test data only)."""
    tmk = bytes.fromhex(tmk_hex)
    if len(tmk) != tmk_bytes:
        raise ValueError("the TMK must be 32 hex digits (double-length TDES)")
    first = os.urandom(tmk_bytes)
    return [first.hex().upper(), xor_bytes(tmk, first).hex().upper()], kcv_tdes(tmk)


async def install_tmk(pinpad: PinPadDriver, tmk_hex: str) -> str:
    """Key ceremony on the EPP; returns the TMK's KCV."""
    components, kcv = split_tmk(tmk_hex)
    await pinpad.load_tmk(components, kcv)
    return kcv


class EppSecurity:
    """``LinkSecurity`` backed by the EPP: retail MACs and TR-31 key import."""

    def __init__(self, pinpad: PinPadDriver) -> None:
        self.pinpad = pinpad

    async def mac(self, data: bytes) -> str:
        return await self.pinpad.mac(data)

    async def install_working_keys(self, tpk_block: str, tak_block: str) -> None:
        await self.pinpad.import_key(KeySlot.TPK, tpk_block)
        await self.pinpad.import_key(KeySlot.TAK, tak_block)
