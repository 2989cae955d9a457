"""Printer driver against its emulator: a bilingual receipt read back from ESC/POS with the
masked PAN and amounts; paper near end and paper out; a printer that does not answer; real pty."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from terminals.devices.printer import Alignment, ReceiptLine
from terminals.drivers.errors import DeviceFault, DeviceTimeout
from terminals.drivers.printer import PrinterDriver, PrinterTiming
from terminals.emulators.faults import Fault, FaultSchedule, at
from terminals.emulators.printer import PrinterEmulator, PrinterModel
from terminals.transport import memory_transport_pair

from .conftest import memory_link, pty_link

FAST = PrinterTiming(status_timeout_seconds=0.2, status_retries_max=1)
RECEIPT = [
    ReceiptLine("ATM-SWITCH BANK", Alignment.CENTRE, bold=True),
    ReceiptLine("取款 / WITHDRAWAL", Alignment.CENTRE),
    ReceiptLine("CARD  621700******0123"),
    ReceiptLine("AMOUNT 金额    CNY 1,000.00"),
    ReceiptLine("BALANCE 余额   CNY 4,321.09", bold=True),
]


async def test_bilingual_receipt_read_back_from_escpos() -> None:
    model = PrinterModel()
    async with memory_link(PrinterEmulator(model).serve) as host:
        status = await PrinterDriver(host, timing=FAST).print_receipt(RECEIPT)
    assert status.online and not status.paper_near_end
    (receipt,) = model.receipts
    assert receipt.lines == RECEIPT
    printed = receipt.text()
    assert "621700******0123" in printed and "CNY 1,000.00" in printed and "余额" in printed


async def test_receipt_over_a_real_pty() -> None:
    model = PrinterModel()
    async with pty_link(PrinterEmulator(model).serve) as host:
        await PrinterDriver(host, timing=FAST).print_receipt(RECEIPT)
    assert model.receipts[0].lines == RECEIPT


async def test_paper_near_end_is_reported_but_prints() -> None:
    model = PrinterModel(FaultSchedule.of(at(Fault.PAPER_NEAR_END, 1)))
    async with memory_link(PrinterEmulator(model).serve) as host:
        status = await PrinterDriver(host, timing=FAST).print_receipt(RECEIPT)
    assert status.paper_near_end and not status.paper_out
    assert model.receipts[0].lines == RECEIPT


async def test_paper_out_during_a_job_is_a_fault_and_then_refused_until_reloaded() -> None:
    model = PrinterModel(FaultSchedule.of(at(Fault.PAPER_OUT, 1)))
    async with memory_link(PrinterEmulator(model).serve) as host:
        driver = PrinterDriver(host, timing=FAST)
        with pytest.raises(DeviceFault) as during:
            await driver.print_receipt(RECEIPT)
        assert "while printing" in str(during.value)
        with pytest.raises(DeviceFault) as before:
            await driver.print_receipt(RECEIPT)
        assert "out of paper" in str(before.value)
        assert not (await driver.status()).online
        model.load_paper()
        await driver.print_receipt(RECEIPT)
    assert len(model.receipts) == 1 and model.receipts[0].lines == RECEIPT


async def test_silent_printer_times_out(autojump_clock: MockClock) -> None:
    model = PrinterModel(FaultSchedule.of(at(Fault.PRINTER_SILENT, 1, 2)))
    async with memory_link(PrinterEmulator(model).serve) as host:
        driver = PrinterDriver(host, timing=FAST)
        started = trio.current_time()
        with trio.fail_after(3), pytest.raises(DeviceTimeout):
            await driver.status()
        # Two tries (status_retries_max = 1), each waiting the status timeout.
        elapsed = trio.current_time() - started
        assert elapsed == pytest.approx(2 * FAST.status_timeout_seconds, abs=0.05)
        assert (await driver.status()).online


async def test_a_stale_status_byte_is_discarded_not_misread() -> None:
    # A late answer to an earlier request (0x7E: paper out) sits in the line when the next
    # request is made: the driver must discard it, not take it as the answer.
    model = PrinterModel()
    host, device = memory_transport_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(PrinterEmulator(model).serve, device)
        await device.send_all(bytes([0x7E]))
        status = await PrinterDriver(host, timing=FAST).status()
        nursery.cancel_scope.cancel()
    assert status.online and not status.paper_out
