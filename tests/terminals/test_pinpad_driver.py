"""EPP driver against its emulator: the key ceremony (two components + KCV), TR-31 import of
TPK/TAK, PIN entry with masked key events, cancel and timeout, MAC; PIN blocks and MACs are
cross-checked against psec, an independent implementation; key blocks are made with psec."""

from __future__ import annotations

import pytest
import trio
from psec import des as psec_des
from psec import mac as psec_mac
from psec import pinblock as psec_pinblock
from psec import tr31 as psec_tr31
from trio.testing import MockClock

from switch.hsm.primitives import xor_bytes
from terminals.devices.pinpad import DisplayKey, KeySlot
from terminals.drivers.errors import DeviceFault, DeviceTimeout
from terminals.drivers.pinpad import (
    PinEntryCancelled,
    PinEntryTimeout,
    PinPadDriver,
    PinPadTiming,
)
from terminals.emulators.faults import Fault, FaultSchedule, at
from terminals.emulators.pinpad import PinPadEmulator
from terminals.transport import Transport

from .conftest import memory_link, pty_link

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

# Test keys (double-length TDES), chosen by hand; never used outside tests.
COMPONENT_1 = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")
COMPONENT_2 = bytes.fromhex("FEDCBA9876543210FEDCBA9876543210")
TMK = xor_bytes(COMPONENT_1, COMPONENT_2)
TPK = bytes.fromhex("1C1C1C1C1C1C1C1C2A2A2A2A2A2A2A2A")
TAK = bytes.fromhex("4646464646464646A1A1A1A1A1A1A1A1")
PAN = "6217001234567890123"
FAST = PinPadTiming(reply_timeout_seconds=0.3, entry_grace_seconds=0.5)


def kcv(key: bytes) -> str:
    """KCV by psec: first 3 bytes of TDES-encrypting zeros."""
    return psec_des.generate_kcv(key, 3).hex().upper()


def key_block(kbpk: bytes, usage: str, key: bytes) -> str:
    """A TR-31 version B key block made by psec (independent of our TR-31 code)."""
    return psec_tr31.wrap(kbpk, psec_tr31.Header("B", usage, "T", "E", "00", "N"), key)


async def loaded(pinpad: PinPadDriver) -> None:
    component_kcvs = await pinpad.load_tmk([COMPONENT_1.hex(), COMPONENT_2.hex()], kcv(TMK))
    assert component_kcvs == [kcv(COMPONENT_1), kcv(COMPONENT_2)]
    assert await pinpad.import_key(KeySlot.TPK, key_block(TMK, "P0", TPK)) == kcv(TPK)
    assert await pinpad.import_key(KeySlot.TAK, key_block(TMK, "M3", TAK)) == kcv(TAK)


def pin_of(block_hex: str) -> str:
    """Decrypt with psec and decode the ISO 9564 format 0 block with psec."""
    clear = psec_des.decrypt_tdes_ecb(TPK, bytes.fromhex(block_hex))
    return psec_pinblock.decode_pinblock_iso_0(clear, PAN)


async def full_session(host: Transport) -> tuple[str, list[DisplayKey], str]:
    async with PinPadDriver.open(host, timing=FAST) as pinpad:
        await loaded(pinpad)
        keys: list[DisplayKey] = []
        block = await pinpad.enter_pin(PAN, timeout_seconds=5, on_key=keys.append)
        mac = await pinpad.mac(b"0200 message bytes to authenticate")
        return block, keys, mac


async def test_ceremony_pin_entry_and_mac_cross_checked_with_psec() -> None:
    emulator = PinPadEmulator(customer_pin="123456")
    async with memory_link(emulator.serve) as host:
        block, keys, mac = await full_session(host)
    assert pin_of(block) == "123456"
    assert keys == [DisplayKey.DIGIT] * 6 + [DisplayKey.ENTER]
    expected_mac = psec_mac.generate_retail_mac(
        TAK[:8], TAK[8:], b"0200 message bytes to authenticate", padding=1
    )
    assert mac == expected_mac.hex().upper()


async def test_pin_entry_over_a_real_pty() -> None:
    emulator = PinPadEmulator(customer_pin="4321")
    async with pty_link(emulator.serve) as host:
        block, keys, _mac = await full_session(host)
    assert pin_of(block) == "4321" and keys.count(DisplayKey.DIGIT) == 4


async def test_long_mac_is_sent_in_chunks_and_still_matches_psec() -> None:
    data = bytes(range(256)) * 6  # 1536 bytes: four MC chunks
    async with memory_link(PinPadEmulator().serve) as host:
        async with PinPadDriver.open(host, timing=FAST) as pinpad:
            await loaded(pinpad)
            mac = await pinpad.mac(data)
    assert mac == psec_mac.generate_retail_mac(TAK[:8], TAK[8:], data, padding=1).hex().upper()


async def test_wrong_tmk_kcv_is_refused_and_keys_stay_unloaded() -> None:
    async with memory_link(PinPadEmulator().serve) as host:
        async with PinPadDriver.open(host, timing=FAST) as pinpad:
            with pytest.raises(DeviceFault) as caught:
                await pinpad.load_tmk([COMPONENT_1.hex(), COMPONENT_2.hex()], "000000")
            assert caught.value.code == "30"
            assert not (await pinpad.status()).tmk_loaded


async def test_key_import_checks_usage_and_integrity() -> None:
    async with memory_link(PinPadEmulator().serve) as host:
        async with PinPadDriver.open(host, timing=FAST) as pinpad:
            with pytest.raises(DeviceFault) as no_tmk:
                await pinpad.import_key(KeySlot.TPK, key_block(TMK, "P0", TPK))
            assert no_tmk.value.code == "20"
            await pinpad.load_tmk([COMPONENT_1.hex(), COMPONENT_2.hex()], kcv(TMK))
            with pytest.raises(DeviceFault) as wrong_usage:
                await pinpad.import_key(KeySlot.TPK, key_block(TMK, "M3", TPK))
            assert wrong_usage.value.code == "32"
            block = key_block(TMK, "P0", TPK)
            tampered = block[:-1] + ("0" if block[-1] != "0" else "1")
            with pytest.raises(DeviceFault) as bad_mac:
                await pinpad.import_key(KeySlot.TPK, tampered)
            assert bad_mac.value.code == "31"
            with pytest.raises(DeviceFault) as wrong_kbpk:
                await pinpad.import_key(KeySlot.TPK, key_block(TAK, "P0", TPK))
            assert wrong_kbpk.value.code == "31"
            with pytest.raises(DeviceFault) as no_tpk:
                await pinpad.enter_pin(PAN, timeout_seconds=1)
            assert no_tpk.value.code == "21"


async def test_customer_cancel() -> None:
    emulator = PinPadEmulator(faults=FaultSchedule.of(at(Fault.PIN_CANCEL, 1)))
    async with memory_link(emulator.serve) as host:
        async with PinPadDriver.open(host, timing=FAST) as pinpad:
            await loaded(pinpad)
            keys: list[DisplayKey] = []
            with pytest.raises(PinEntryCancelled):
                await pinpad.enter_pin(PAN, timeout_seconds=5, on_key=keys.append)
            assert keys == [DisplayKey.DIGIT, DisplayKey.CANCEL]
            assert pin_of(await pinpad.enter_pin(PAN, timeout_seconds=5)) == "1234"


async def test_customer_walks_away_and_entry_times_out(autojump_clock: MockClock) -> None:
    emulator = PinPadEmulator(faults=FaultSchedule.of(at(Fault.PIN_TIMEOUT, 1)))
    async with memory_link(emulator.serve) as host:
        async with PinPadDriver.open(host, timing=FAST) as pinpad:
            await loaded(pinpad)
            # On the mock clock: the EPP's own 1 s timer ends the entry, not the driver's grace.
            started = trio.current_time()
            with trio.fail_after(3), pytest.raises(PinEntryTimeout):
                await pinpad.enter_pin(PAN, timeout_seconds=1)
            assert 1.0 <= trio.current_time() - started < 1.0 + FAST.entry_grace_seconds
            assert not (await pinpad.status()).entry_active


async def test_host_cancel_and_silent_epp(autojump_clock: MockClock) -> None:
    emulator = PinPadEmulator(customer_pin=None)
    async with memory_link(emulator.serve) as host:
        async with PinPadDriver.open(host, timing=FAST) as pinpad:
            await loaded(pinpad)
            async with trio.open_nursery() as nursery:

                async def cancel_soon() -> None:
                    await trio.sleep(0.05)
                    await pinpad.cancel_entry()

                nursery.start_soon(cancel_soon)
                with pytest.raises(PinEntryCancelled):
                    await pinpad.enter_pin(PAN, timeout_seconds=5)
            emulator.faults = FaultSchedule.of(
                at(Fault.PINPAD_SILENT, 1, 2, 3)  # every attempt of one STATUS is lost
            )
            started = trio.current_time()
            with pytest.raises(DeviceTimeout):
                await pinpad.status()
            # Three attempts (one send and two resends), each waiting one reply timeout.
            assert trio.current_time() - started == pytest.approx(3 * FAST.reply_timeout_seconds)
            assert (await pinpad.status()).tpk_loaded


async def test_digits_beyond_max_and_short_enter_are_ignored() -> None:
    emulator = PinPadEmulator(customer_pin=None)
    async with memory_link(emulator.serve) as host:
        async with PinPadDriver.open(host, timing=FAST) as pinpad:
            await loaded(pinpad)
            keys: list[DisplayKey] = []
            async with trio.open_nursery() as nursery:

                async def customer() -> None:
                    while emulator.model.entry is None:
                        await trio.sleep(0.005)
                    for key in ["1", "2", "enter", "backspace", "3", "4", "5", "6", "7", "enter"]:
                        await emulator.press(key)

                nursery.start_soon(customer)
                block = await pinpad.enter_pin(
                    PAN, length_max=5, timeout_seconds=5, on_key=keys.append
                )
    assert pin_of(block) == "13456"
    assert keys.count(DisplayKey.DIGIT) == 6 and DisplayKey.BACKSPACE in keys
