"""One customer at a bench of all four emulators on ptys, each driver opening its port by path
with pyserial: card in, PIN block (checked with psec), dispense, receipt read back, card out, and
the journal and counters of the session agree with what the devices did."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from psec import des as psec_des
from psec import pinblock as psec_pinblock
from psec import tr31 as psec_tr31

from switch.hsm.primitives import xor_bytes
from terminals.devices.pinpad import KeySlot
from terminals.devices.printer import Alignment, ReceiptLine
from terminals.drivers.card_reader import CardReaderDriver, CardReaderTiming
from terminals.drivers.dispenser import DispenserDriver, DispenserTiming
from terminals.drivers.pinpad import PinPadDriver
from terminals.drivers.printer import PrinterDriver
from terminals.emulators.bench import start_device_bench
from terminals.emulators.card_reader import CardReaderModel
from terminals.journal import (
    CashUnit,
    CassetteCounters,
    Journal,
    mask_pan,
    read_journal,
    verify_journal,
)
from terminals.transport import SerialTransport

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

C1 = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")
C2 = bytes.fromhex("FEDCBA9876543210FEDCBA9876543210")
TMK, TPK = xor_bytes(C1, C2), bytes.fromhex("1C1C1C1C1C1C1C1C2A2A2A2A2A2A2A2A")
PAN, TRACK2 = "6217001234567890", "6217001234567890=27122201000000000"


async def insert_card(reader: CardReaderModel) -> None:
    while not reader.insert_card(TRACK2):
        await trio.sleep(0.005)


async def test_one_customer_at_the_full_bench(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "ej.jsonl", "ATM00001", durable=False)
    async with trio.open_nursery() as nursery:
        bench = await start_device_bench(nursery, customer_pin="2468")
        ports = {
            name: SerialTransport.open(path, lines=bench.lines[name])
            for name, path in bench.paths.items()
        }
        bench.close()
        poll_fast = 0.01
        reader = CardReaderDriver(
            ports["card_reader"], timing=CardReaderTiming(status_poll_seconds=poll_fast)
        )
        dispenser = DispenserDriver(
            ports["dispenser"], timing=DispenserTiming(status_poll_seconds=poll_fast)
        )
        printer = PrinterDriver(ports["printer"])
        async with PinPadDriver.open(ports["pinpad"]) as pinpad:
            kcv = psec_des.generate_kcv(TMK, 3).hex().upper()
            await pinpad.load_tmk([C1.hex(), C2.hex()], kcv)
            header = psec_tr31.Header("B", "P0", "T", "E", "00", "N")
            await pinpad.import_key(KeySlot.TPK, psec_tr31.wrap(TMK, header, TPK))

            await reader.initialise()
            nursery.start_soon(insert_card, bench.card_reader)
            assert await reader.wait_for_card(timeout_seconds=2)
            track = await reader.read_track2()
            journal.record("card_read", track2=track)
            block = await pinpad.enter_pin(PAN, timeout_seconds=5)
            journal.record("pin_entered", pin_block=block)

            info = await dispenser.cassette_info()
            counters = CassetteCounters(
                [CashUnit(n, c.currency, c.denomination) for n, c in enumerate(info, start=1)]
            )
            for number in range(1, 5):
                counters.replenish(number, 500)
            result = await dispenser.dispense([2, 1, 0, 0])
            counters.record_dispense(result.checked, result.exited, result.rejected)
            await dispenser.present(take_timeout_seconds=1)
            journal.record("dispensed", notes=list(result.exited), counters=counters.snapshot())

            await printer.print_receipt(
                [
                    ReceiptLine("取款 WITHDRAWAL", Alignment.CENTRE, bold=True),
                    ReceiptLine(f"CARD {mask_pan(track.split('=')[0])}"),
                    ReceiptLine("AMOUNT CNY 250.00"),
                ]
            )
            assert await reader.return_card(take_timeout_seconds=1)
            journal.record("card_returned")
        for port in ports.values():
            await port.aclose()
        nursery.cancel_scope.cancel()

    clear = psec_des.decrypt_tdes_ecb(TPK, bytes.fromhex(block))
    assert psec_pinblock.decode_pinblock_iso_0(clear, PAN) == "2468"
    assert bench.dispenser.notes_taken == [2, 1, 0, 0]
    assert counters.amount_paid_out() == 25000
    receipt = bench.printer.receipts[0].text()
    assert "CARD 621700******7890" in receipt and PAN not in receipt
    assert "AMOUNT CNY 250.00" in receipt
    records = read_journal(tmp_path / "ej.jsonl")
    assert verify_journal(tmp_path / "ej.jsonl") == 4
    assert records[0]["track2"] == "621700******7890" and records[1]["pin_block"] == "[withheld]"
    assert records[2]["counters"][0]["dispensed"] == 2
