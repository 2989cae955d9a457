"""The scenario format (TOML), validated into typed objects with messages naming the bad entry.

    name = "withdrawal"
    seed = 7
    [terminal]                       # optional; defaults shown in docs/simulator.md
    id = "ATM00001"
    tmk = "0123...3210"              # clear TMK, test data: loaded into the EPP as 2 components
    [faults]                         # device faults (terminals/emulators/faults.py names)
    "dispenser.pick_error" = { at = [3] }
    [host_faults]                    # host faults: host.timeout, host.late_reply, host.disconnect
    "host.timeout" = { at = [1] }
    [[sessions]]
    card = "6228480000000000017=30121010000000"
    language = "zh"
    pins = ["1234"]
    [[sessions.transactions]]
    type = "withdrawal"
    amount = 50000                   # minor units (CNY 500.00)
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from terminals.atm.session import parse_track2
from terminals.scenarios.expect import Expectation, ExpectationError, parse_expectation

TRANSACTION_TYPES = ("withdrawal", "deposit", "transfer", "balance", "mini_statement",
                     "pin_change")
DEFAULT_TMK = "0123456789ABCDEFFEDCBA9876543210"
_TERMINAL_KEYS = {"id", "tmk", "retain_card_on_75", "response_timeout_s", "cassettes",
                  "customer_timeout_s", "card_take_timeout_s", "cash_take_timeout_s",
                  "late_reply_delay_s", "echo_idle_s", "chip_reader"}


class ScenarioError(ValueError):
    """The scenario file is not in the documented format; the message names the entry."""


@dataclass(frozen=True, slots=True)
class TransactionScript:
    type: str
    amount: int = 0
    payee: str = ""
    confirm: bool = True
    notes: tuple[tuple[int, ...], ...] = ()  # deposit: one tuple per insertion
    new_pin: str = ""
    confirm_pin: str = ""


@dataclass(frozen=True, slots=True)
class ChipScript:
    """The card's chip: its issuer's IMK-AC (test data: the card derives its MK-AC from it at
    personalisation, as the switch's fixture does), PSN and the ATC it starts from."""

    imk_ac: str
    psn: str = "01"
    atc: int = 0


@dataclass(frozen=True, slots=True)
class SessionScript:
    card: str
    language: str = "en"
    pins: tuple[str, ...] = ("1234",)
    transactions: tuple[TransactionScript, ...] = ()
    chip: ChipScript | None = None


@dataclass(frozen=True, slots=True)
class CassetteLoad:
    denomination: int
    count: int


@dataclass(frozen=True, slots=True)
class TerminalSettings:
    terminal_id: str = "ATM00001"
    tmk: str = DEFAULT_TMK
    retain_card_on_75: bool = True
    response_timeout_s: float = 10.0
    customer_timeout_s: float = 30.0
    card_take_timeout_s: float = 30.0
    cash_take_timeout_s: float = 30.0
    late_reply_delay_s: float = 15.0
    echo_idle_s: float = 60.0
    chip_reader: bool = True
    cassettes: tuple[CassetteLoad, ...] = (
        CassetteLoad(10_000, 500), CassetteLoad(5_000, 500), CassetteLoad(2_000, 500),
        CassetteLoad(1_000, 500))


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    terminal: TerminalSettings
    sessions: tuple[SessionScript, ...]
    seed: int = 0
    faults: Mapping[str, Any] = field(default_factory=dict)
    host_faults: Mapping[str, Any] = field(default_factory=dict)
    host: str | None = None
    port: int | None = None
    expect: Expectation | None = None
    requires: tuple[str, ...] = ()  # host capabilities the scenario needs ("chip")
    description: str = ""


# Capabilities a scenario may require of the switch it runs against.
CAPABILITIES = ("chip",)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file; a bare name (``demo``) loads a bundled example."""
    candidate = Path(path)
    if not candidate.exists() and candidate.suffix == "" and "/" not in str(path):
        bundled = resources.files("terminals.scenarios") / "examples" / f"{path}.toml"
        if bundled.is_file():
            return parse_scenario(tomllib.loads(bundled.read_text(encoding="utf-8")), str(path))
    try:
        text = candidate.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror or exc}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}") from exc
    return parse_scenario(document, candidate.stem)


def bundled_scenarios() -> list[str]:
    folder = resources.files("terminals.scenarios") / "examples"
    return sorted(item.name.removesuffix(".toml") for item in folder.iterdir()
                  if item.name.endswith(".toml"))


def parse_scenario(document: Mapping[str, Any], default_name: str) -> Scenario:
    unknown = set(document) - {"name", "seed", "terminal", "faults", "host_faults", "sessions",
                               "host", "expect", "requires", "description"}
    if unknown:
        raise ScenarioError(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
    sessions = document.get("sessions", [])
    if not isinstance(sessions, list) or not sessions:
        raise ScenarioError("a scenario needs at least one [[sessions]] entry")
    host = _table(document, "host", "host")
    return Scenario(
        name=str(document.get("name", default_name)),
        terminal=_terminal(_table(document, "terminal", "terminal")),
        sessions=tuple(_session(entry, f"sessions[{i}]") for i, entry in enumerate(sessions)),
        seed=_integer(document.get("seed", 0), "seed"),
        faults=_table(document, "faults", "faults"),
        host_faults=_table(document, "host_faults", "host_faults"),
        host=str(host["host"]) if "host" in host else None,
        port=_integer(host["port"], "host.port") if "port" in host else None,
        expect=_expect(document.get("expect")),
        requires=_requires(document.get("requires", [])),
        description=str(document.get("description", "")),
    )


def _expect(table: Any) -> Expectation | None:
    if table is None:
        return None
    try:
        return parse_expectation(table)
    except ExpectationError as exc:
        raise ScenarioError(str(exc)) from exc


def _requires(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or any(v not in CAPABILITIES for v in value):
        raise ScenarioError(f"requires must list capabilities from: {', '.join(CAPABILITIES)}")
    return tuple(value)


def _table(document: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where} must be a table")
    return dict(value)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{where} must be an integer")
    return value


def _terminal(table: Mapping[str, Any]) -> TerminalSettings:
    unknown = set(table) - _TERMINAL_KEYS
    if unknown:
        raise ScenarioError(f"terminal: unknown key(s): {', '.join(sorted(unknown))}")
    defaults = TerminalSettings()
    tmk = str(table.get("tmk", defaults.tmk))
    if len(tmk) != 32 or any(c not in "0123456789abcdefABCDEF" for c in tmk):
        raise ScenarioError("terminal.tmk must be 32 hex digits (double-length TDES)")
    cassettes = defaults.cassettes
    if "cassettes" in table:
        entries = table["cassettes"]
        if not isinstance(entries, list) or len(entries) != 4:
            raise ScenarioError("terminal.cassettes must list exactly 4 cassettes")
        cassettes = tuple(
            CassetteLoad(_integer(c.get("denomination"), f"terminal.cassettes[{i}].denomination"),
                         _integer(c.get("count", 0), f"terminal.cassettes[{i}].count"))
            for i, c in enumerate(entries))
    seconds = {key: float(table.get(key, getattr(defaults, key))) for key in (
        "response_timeout_s", "customer_timeout_s", "card_take_timeout_s",
        "cash_take_timeout_s", "late_reply_delay_s", "echo_idle_s")}
    return TerminalSettings(
        terminal_id=str(table.get("id", defaults.terminal_id)), tmk=tmk.upper(),
        retain_card_on_75=bool(table.get("retain_card_on_75", True)), cassettes=cassettes,
        chip_reader=bool(table.get("chip_reader", True)), **seconds)


def _session(entry: Any, where: str) -> SessionScript:
    if not isinstance(entry, Mapping):
        raise ScenarioError(f"{where} must be a table")
    card = str(entry.get("card", ""))
    try:
        parse_track2(card)
    except ValueError:
        raise ScenarioError(f"{where}.card must be track 2: PAN '=' YYMM ...") from None
    language = str(entry.get("language", "en"))
    if language not in ("en", "zh"):
        raise ScenarioError(f"{where}.language must be 'en' or 'zh'")
    pins = entry.get("pins", [entry.get("pin", "1234")])
    if not isinstance(pins, list) or not pins or not all(_is_pin(p) for p in pins):
        raise ScenarioError(f"{where}.pins must list PINs of 4-12 digits")
    transactions = entry.get("transactions", [])
    if not isinstance(transactions, list):
        raise ScenarioError(f"{where}.transactions must be a list of tables")
    return SessionScript(card, language, tuple(pins), tuple(
        _transaction(t, f"{where}.transactions[{i}]") for i, t in enumerate(transactions)),
        _chip(entry.get("chip"), f"{where}.chip"))


def _chip(value: Any, where: str) -> ChipScript | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"imk_ac", "psn", "atc"}:
        raise ScenarioError(f"{where} must be a table with imk_ac, psn, atc")
    imk = str(value.get("imk_ac", ""))
    if len(imk) != 32 or any(c not in "0123456789abcdefABCDEF" for c in imk):
        raise ScenarioError(f"{where}.imk_ac must be 32 hex digits (double-length TDES)")
    psn = str(value.get("psn", "01"))
    if len(psn) != 2 or not psn.isdigit():
        raise ScenarioError(f"{where}.psn must be 2 digits")
    atc = _integer(value.get("atc", 0), f"{where}.atc")
    if not 0 <= atc < 0xFFFF:
        raise ScenarioError(f"{where}.atc must be 0..65534")
    return ChipScript(imk.upper(), psn, atc)


def _is_pin(value: Any) -> bool:
    return isinstance(value, str) and value.isdigit() and 4 <= len(value) <= 12


def _transaction(entry: Any, where: str) -> TransactionScript:
    if not isinstance(entry, Mapping) or entry.get("type") not in TRANSACTION_TYPES:
        raise ScenarioError(f"{where}.type must be one of {', '.join(TRANSACTION_TYPES)}")
    kind = str(entry["type"])
    amount = _integer(entry.get("amount", 0), f"{where}.amount")
    if kind in ("withdrawal", "transfer") and amount <= 0:
        raise ScenarioError(f"{where}.amount must be a positive amount in minor units")
    notes = entry.get("notes", [])
    if notes and not isinstance(notes[0], list):
        notes = [notes]
    if kind == "deposit" and not notes:
        raise ScenarioError(f"{where}.notes must list the notes to deposit (minor units)")
    new_pin = str(entry.get("new_pin", ""))
    if kind == "pin_change" and not _is_pin(new_pin):
        raise ScenarioError(f"{where}.new_pin must be 4-12 digits")
    if kind == "transfer" and not entry.get("payee"):
        raise ScenarioError(f"{where}.payee must name the payee's account")
    return TransactionScript(
        kind, amount, str(entry.get("payee", "")), bool(entry.get("confirm", True)),
        tuple(tuple(_integer(n, f"{where}.notes") for n in batch) for batch in notes),
        new_pin, str(entry.get("confirm_pin", new_pin)))
