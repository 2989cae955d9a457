"""One history, end to end: a fresh database, the proxy, the switch, the terminals; play the
history, settle (advices repeated until recorded, hold expiry, sweeper), read the final state
directly from PostgreSQL, judge it with the oracle, and check which PIN works."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ledger_adapter.errors import LedgerUnavailable
from switch.db.runtime import DatabaseUnavailable, open_database
from tests.simulate import oracle
from tests.simulate.history import History
from tests.simulate.node import NodeConfig, SwitchNode, Terminal
from tests.simulate.observe import FinalState, read_final_state, read_rows
from tests.simulate.pg_proxy import PgProxy
from tests.simulate.postgres import SimPostgres
from tests.simulate.runner import HistoryRunner
from tests.simulate.world import book

log = logging.getLogger(__name__)

UNRESOLVED = frozenset({"claimed", "pending"})  # engine v3's and v2's undecided claim
settle_poll_s = 15.0
read_attempts_max = 5  # after expiry, how long the sweeper may take to empty every hold


@dataclass(slots=True)
class Outcome:
    violations: list[str]
    messages: int
    faults: Counter[str] = field(default_factory=Counter)
    ordered_by: str = ""
    search_nodes: int = 0
    notes: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)  # every message, for a failing seed
    started: bool = True  # False: a terminal never signed on, so no step ran


# The first sign-on of a history is set-up, not a step under test: a loaded machine (or a
# switch still warming up) may miss one deadline, so it is tried again, as an ATM would.
sign_on_attempts_max = 5
sign_on_retry_pause_s = 0.5


async def run_history(postgres: SimPostgres, history: History, *, seed: int,
                      config: NodeConfig | None = None) -> Outcome:
    config = config or NodeConfig()
    database, data_dir = await postgres.new_installation()
    try:
        return await _run(postgres, database, data_dir, history, seed, config)
    finally:
        await postgres.drop_installation(database, data_dir)


async def _run(postgres: SimPostgres, database: str, data_dir: Path, history: History,
               seed: int, config: NodeConfig) -> Outcome:
    proxy = PgProxy(postgres.socket_path, seed=seed)
    async with trio.open_nursery() as nursery:
        node = SwitchNode(proxy, database, data_dir, config, nursery)
        try:
            return await _run_on(node, postgres, proxy, database, history, data_dir, config,
                                 nursery)
        finally:
            with trio.CancelScope(shield=True):  # never leave a switch process behind
                await node.kill()
            nursery.cancel_scope.cancel()
    raise AssertionError("unreachable")


async def _run_on(node: SwitchNode, postgres: SimPostgres, proxy: PgProxy, database: str,
                  history: History, data_dir: Path, config: NodeConfig,
                  nursery: trio.Nursery) -> Outcome:
    """One history on a started node: sign-on, steps, settling, the oracle's verdict."""
    await node.start()
    runner = HistoryRunner(node, postgres, proxy, config, nursery)
    for terminal in runner.terminals.values():
        if not await _signed_on(terminal, node, nursery):
            log.warning("terminal %s could not sign on in %d attempts: history not run",
                        terminal.terminal_id, sign_on_attempts_max)
            return Outcome([], 0, Counter(proxy.fired), started=False)
    await runner.run(history)
    await runner.settle()
    final = await _settled_state(postgres.dsn(database))
    verdict = oracle.check(runner.journal, final, book(), expiry_s=config.hold_expiry_s)
    violations = list(verdict.violations)
    if verdict.book is not None:
        violations += await _probe_pins(runner, verdict.book)
    await runner.close()
    await node.kill()
    faults = Counter(proxy.fired)
    faults.update({f"crash.{kind}": n for kind, n in runner.crashes.items()})
    trace = _trace(runner, final)
    if violations:
        trace += _switch_errors(data_dir / "serve.log")
    return Outcome(violations, runner.journal.messages, faults, final.ordered_by,
                   verdict.nodes, final.notes, trace)


async def _signed_on(terminal: Terminal, node: SwitchNode, nursery: trio.Nursery) -> bool:
    for attempt in range(sign_on_attempts_max):
        if await terminal.connected(node, nursery) is not None:
            return True
        if attempt + 1 < sign_on_attempts_max:
            await trio.sleep(sign_on_retry_pause_s)
    return False


# Lines of the switch's own log kept in a failing history's trace (its errors, tracebacks).
switch_log_lines_max = 200


def _switch_errors(log_path: Path) -> list[str]:
    """The switch's warnings, errors and tracebacks (its log is JSON lines on stderr)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    kept = [f"switch: {line}" for line in lines
            if '"WARNING"' in line or '"ERROR"' in line or "Traceback" in line
            or line.startswith((" ", "\t"))]
    return kept[-switch_log_lines_max:]


def _trace(runner: HistoryRunner, final: FinalState) -> list[str]:
    """One line per message in the order first sent: what it was, what each attempt got,
    what is recorded and where it stands in the commit order."""
    recorded = {(row.message_class, row.key): (row.code, row.order) for row in final.rows}
    lines = []
    for sent in runner.journal.sent.values():
        attempts = ", ".join(
            f"{'' if a.same_content else 'OTHER '}{a.code or a.error or 'lost'}"
            f"@{a.sent_at:.2f}" for a in sent.attempts)
        lines.append(f"{sent.message_class} {sent.key[0]}/{sent.key[1]} {sent.model} -> "
                     f"[{attempts}] recorded {recorded.get((sent.message_class, sent.key))}")
    lines.append(f"final {final.balances} counters {final.counters} cards {final.cards}")
    return lines


async def _settled_state(dsn: str) -> FinalState:
    """Wait (bounded) until the sweeper has emptied every hold and resolved every claim,
    then read the state (again on a new connection when PostgreSQL dropped the reader's:
    a restart another history made)."""
    for attempt in range(read_attempts_max):
        try:
            return await _read_settled(dsn)
        except (DatabaseUnavailable, LedgerUnavailable):
            if attempt == read_attempts_max - 1:
                raise
            log.warning("final state read failed, reading again", exc_info=True)
            await trio.sleep(1.0)
    raise AssertionError("unreachable")


async def _read_settled(dsn: str) -> FinalState:
    async with open_database(dsn, pool_size_min=1, pool_size_max=2) as db:
        with trio.move_on_after(settle_poll_s):
            while True:
                final = await read_final_state(db)
                rows, _ = await read_rows(db)
                if not any(held or pending for _l, held, pending in final.balances.values()) \
                        and not any(row.state in UNRESOLVED for row in rows):
                    break
                await trio.sleep(0.3)
        return await read_final_state(db)


async def _probe_pins(runner: HistoryRunner, matched: object) -> list[str]:
    """After the state was read: the PIN the model says is current works (or the card is
    blocked, 75), so a voided PIN change must not have kept the new PIN."""
    from tests.simulate.model import Book

    assert isinstance(matched, Book)
    violations = []
    for name, card in matched.cards.items():
        code = await runner.probe_pin(name, card.pin)
        expected = "75" if card.blocked else "00"
        if code is not None and code != expected:
            violations.append(f"state.pin: card {name} with the model's PIN got {code}, "
                              f"expected {expected}")
    return violations


@dataclass(frozen=True, slots=True)
class Named:
    """One history to run: its name (a catalogue entry or ``seed N``) and seed."""

    name: str
    history: History
    seed: int


async def run_many(postgres: SimPostgres, histories: list[Named], *, config: NodeConfig,
                   parallel: int, on_outcome: Callable[[Named, Outcome], None]) -> None:
    """Run histories ``parallel`` at a time, each with its own database, data directory,
    proxy and switch process (so one's crash does not disturb another, except a PostgreSQL
    restart, which every history then sees as a fault of its own)."""
    limiter = trio.CapacityLimiter(parallel)

    async def one(named: Named) -> None:
        async with limiter:
            outcome = await run_history(postgres, named.history, seed=named.seed,
                                        config=config)
        on_outcome(named, outcome)

    async with trio.open_nursery() as nursery:
        for named in histories:
            nursery.start_soon(one, named)
