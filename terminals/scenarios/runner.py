"""Play a scenario: the four device emulators on ptys, the firmware with its drivers, the host
link to a switch (through the fault proxy when the scenario has host faults), and scripted
customers one after another. Returns what happened as plain data (``--json``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from terminals.atm.config import AtmConfig
from terminals.atm.devices import AtmDevices, EppSecurity, install_tmk, open_atm_devices
from terminals.atm.firmware import AtmFirmware
from terminals.atm.session import Customer
from terminals.emulators.bench import DeviceBench, start_device_bench
from terminals.emulators.chip_card import ChipCard
from terminals.emulators.dispenser import Cassette
from terminals.emulators.faults import FaultSchedule
from terminals.hostlink.fault_proxy import FaultProxy, HostFaultSchedule
from terminals.hostlink.link import HostLink, HostLinkConfig
from terminals.journal import Journal
from terminals.scenarios.customer import ScriptedCustomer
from terminals.scenarios.loader import Scenario, TerminalSettings
from terminals.scenarios.wallet import ChipWallet

# After the last customer, advices still queued get this long to reach the host.
advices_drain_timeout_s = 30.0
card_insert_poll_s = 0.01
late_reply_collect_s = 0.5


@dataclass
class Atm:
    """A running simulated ATM (what the runner, the demo and tests drive)."""

    bench: DeviceBench
    devices: AtmDevices
    link: HostLink
    firmware: AtmFirmware
    journal: Journal
    data_dir: Path
    proxy: FaultProxy | None = None
    faults: FaultSchedule = field(default_factory=FaultSchedule)

    async def insert_card(self, track2: str, chip: ChipCard | None = None) -> None:
        """The customer pushes the card in as soon as the reader's shutter opens."""
        while not self.bench.card_reader.insert_card(track2, chip):
            await trio.sleep(card_insert_poll_s)


def atm_config(terminal: TerminalSettings) -> AtmConfig:
    return AtmConfig(
        terminal_id=terminal.terminal_id, retain_card_on_75=terminal.retain_card_on_75,
        cassette_notes=tuple(c.count for c in terminal.cassettes),
        replenished_at_start=True,  # the run fills the emulated cassettes as the scenario says
        customer_timeout_s=terminal.customer_timeout_s,
        card_take_timeout_s=terminal.card_take_timeout_s,
        cash_take_timeout_s=terminal.cash_take_timeout_s, card_wait_poll_s=0.2,
        chip_reader=terminal.chip_reader)


@asynccontextmanager
async def running_atm(scenario: Scenario, *, host: str, port: int, data_dir: Path,
                      customer: Customer | None = None, durable_journal: bool = True,
                      ) -> AsyncIterator[Atm]:
    """Start devices, firmware and host link; stop them when the block ends."""
    terminal = scenario.terminal
    data_dir.mkdir(parents=True, exist_ok=True)
    faults = FaultSchedule.from_mapping(scenario.faults, seed=scenario.seed)
    async with trio.open_nursery() as nursery:
        proxy = None
        if scenario.host_faults:
            proxy = FaultProxy((host, port), HostFaultSchedule.from_mapping(
                scenario.host_faults, seed=scenario.seed,
                late_reply_delay_s=terminal.late_reply_delay_s))
            host, port = "127.0.0.1", await nursery.start(proxy.run)
        cassettes = [Cassette(c.denomination, "156", count=c.count) for c in terminal.cassettes]
        bench = await start_device_bench(nursery, faults=faults, cassettes=cassettes,
                                         customer_pin=None)
        async with open_atm_devices(bench.paths, bench.lines) as devices:
            bench.close()
            await install_tmk(devices.pinpad, terminal.tmk)
            journal = Journal(data_dir / "journal.jsonl", terminal.terminal_id,
                              durable=durable_journal)
            link = HostLink(HostLinkConfig(host, port, terminal.terminal_id,
                                           response_timeout_s=terminal.response_timeout_s,
                                           echo_idle_s=terminal.echo_idle_s,
                                           reconnect_delay_s=0.2, advice_retry_s=1.0),
                            EppSecurity(devices.pinpad), data_dir, journal)
            firmware = AtmFirmware(atm_config(terminal), devices, link,
                                   customer or ScriptedCustomer(bench.pinpad), journal, data_dir)
            nursery.start_soon(link.run)
            await nursery.start(firmware.run)
            yield Atm(bench, devices, link, firmware, journal, data_dir, proxy, faults)
            nursery.cancel_scope.cancel()


async def run_scenario(scenario: Scenario, *, host: str, port: int, data_dir: Path,
                       durable_journal: bool = True, wallet_dir: Path | None = None
                       ) -> dict[str, Any]:
    """Play every session of ``scenario``; return the results. ``wallet_dir`` holds the chip
    cards' ATCs (default: ``data_dir``; the catalogue shares one across its scenarios)."""
    async with running_atm(scenario, host=host, port=port, data_dir=data_dir,
                           durable_journal=durable_journal) as atm:
        customer = atm.firmware.customer
        if not isinstance(customer, ScriptedCustomer):
            raise TypeError("run_scenario needs the scripted customer")
        wallet = ChipWallet(wallet_dir or data_dir)
        for number, session in enumerate(scenario.sessions, start=1):
            if number > 1:  # settle the last session's holds before the next card comes
                await atm.link.wait_advices_sent(advices_drain_timeout_s)
            customer.begin(session)
            await atm.insert_card(session.card, wallet.card_for(session))
            await atm.firmware.wait_sessions(number)
            wallet.save()
        drained = await atm.link.wait_advices_sent(advices_drain_timeout_s)
        if atm.proxy is not None:
            delay = scenario.terminal.late_reply_delay_s
            await atm.proxy.wait_late_replies_delivered(delay + 1.0)
            await trio.sleep(late_reply_collect_s)  # the link notices it on its next look
        return results(scenario, atm, drained, wallet)


def results(scenario: Scenario, atm: Atm, drained: bool,
            wallet: ChipWallet | None = None) -> dict[str, Any]:
    sessions = atm.firmware.completed_sessions
    transactions = [
        {"session": number, "language": session["language"], **transaction}
        for number, session in enumerate(sessions, start=1)
        for transaction in session["transactions"]
    ]
    fired = [f"{item.fault.value}#{item.opportunity}" for item in atm.faults.fired]
    if atm.proxy is not None:
        fired += [f"{name}#{n}" for name, n in atm.proxy.schedule.fired]
    return {
        "scenario": scenario.name,
        "terminal_id": scenario.terminal.terminal_id,
        "sessions": sessions,
        "transactions": transactions,
        "advices_pending": len(atm.link.store),
        "advices_drained": drained,
        "late_replies": len(atm.link.late_replies),
        "faults_fired": fired,
        "receipts": [receipt.text() for receipt in atm.bench.printer.receipts],
        "cassettes": atm.firmware.counters.snapshot(),
        "cash_paid_out": atm.firmware.counters.amount_paid_out(),
        "journal": str(atm.journal.path),
        "journal_events": list(atm.journal.events),
        "chip_cards": {key: {"atc": card.atc, "decisions": [
            {"atc": d.atc, "requested": d.requested.name, "returned": d.returned.name,
             "arpc_verified": d.arpc_verified} for d in card.decisions]}
            for key, card in (wallet.cards if wallet else {}).items()},
    }
