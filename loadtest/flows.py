"""What a load-test terminal does: sign on, get keys, run transactions, check answers."""

from __future__ import annotations

import trio

from loadtest.keys import KeyExchangeError, local_working_keys, unwrap_working_keys
from loadtest.messages import Kind, MessageFactory
from loadtest.mix import MixChooser
from loadtest.population import Terminal
from loadtest.session import RequestFailed, Session
from loadtest.stats import PhaseStats
from loadtest.terminal_crypto import MacMismatch, TerminalCrypto
from loadtest.wire import mac_length_chars

# Spec 8: these answers carry no MAC (63 only when the TAK is unknown).
UNMACED_CODES = frozenset({b"30", b"58", b"63"})
REVERSAL_REASON_FAILED = b"22"  # spec 5.4: the dispense or deposit failed
NETWORK_SIGN_ON = b"001"
NETWORK_KEY_EXCHANGE = b"161"
ANSWER_MTI = {"0200": b"0210", "0220": b"0230", "0420": b"0430"}


class SetupFailed(Exception):
    """A terminal could not sign on or get working keys; ``reason`` says which step."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Recorder:
    """Hands results to the current phase's stats when intended inside its window."""

    def __init__(self) -> None:
        self.stats: PhaseStats | None = None
        self.window_start = 0.0
        self.window_end = 0.0

    def begin(self, stats: PhaseStats, window_start: float, window_end: float) -> None:
        self.stats, self.window_start, self.window_end = stats, window_start, window_end

    def end(self) -> None:
        self.stats = None

    def record(self, kind: str, outcome: str, intended: float, answered: float) -> None:
        stats = self.stats
        if stats is None or not self.window_start <= intended < self.window_end:
            return
        stats.record(kind, outcome, int((answered - intended) * 1e6), answered - self.window_start)


class LoadTerminal:
    """One terminal's flows over its own session and keys."""

    def __init__(
        self,
        terminal: Terminal,
        session: Session,
        recorder: Recorder,
        *,
        response_timeout_s: float,
        verify_mac: bool,
    ) -> None:
        self.terminal = terminal
        self.session = session
        self.recorder = recorder
        self.factory = MessageFactory(terminal)
        self.response_timeout_s = response_timeout_s
        self.verify_mac = verify_mac
        self._terminal_id = terminal.terminal_id.encode("ascii")

    async def setup(self, *, key_exchange: bool, seed: str) -> None:
        """Sign on (spec 5.1), then get working keys (key exchange or local)."""
        await self._network(NETWORK_SIGN_ON, "sign_on")
        if key_exchange:
            fields = await self._network(NETWORK_KEY_EXCHANGE, "key_exchange")
            try:
                tpk, tak = unwrap_working_keys(self.terminal.tmk, fields.get(48, b""))
            except KeyExchangeError as exc:
                raise SetupFailed("key_exchange_keys") from exc
        else:
            tpk, tak = local_working_keys(seed, self.terminal.index)
        self.factory.set_crypto(TerminalCrypto(tpk, tak))

    async def _network(self, code: bytes, step: str) -> dict[int, bytes]:
        stan = self.session.next_stan()
        try:
            mti, fields, _ = await self.session.exchange(
                stan, self.factory.network(code, stan), self.response_timeout_s
            )
        except RequestFailed as exc:
            raise SetupFailed(f"{step}_{exc.outcome}") from exc
        if mti != b"0810" or fields.get(39) != b"00":
            raise SetupFailed(f"{step}_{fields.get(39, b'--').decode('ascii', 'replace')}")
        return fields

    def _outcome(
        self, expected_mti: bytes, mti: bytes, fields: dict[int, bytes], raw: bytes
    ) -> str:
        """The response code, or an error outcome when the answer is not acceptable."""
        if mti != expected_mti or fields.get(41) != self._terminal_id:
            return "mismatch"
        code = fields.get(39)
        if code is None:
            return "malformed"
        mac = fields.get(128) or fields.get(64)
        if mac is None:
            return code.decode("ascii", "replace") if code in UNMACED_CODES else "bad_mac"
        crypto = self.factory.crypto
        assert crypto is not None  # setup() ran
        try:
            crypto.verify_mac(raw[:-mac_length_chars], mac)
        except MacMismatch:
            # The echo baseline cannot MAC (it has no keys): the work is done, the verdict unused.
            if self.verify_mac:
                return "bad_mac"
        return code.decode("ascii", "replace")

    async def _ask(self, stan: bytes, request: bytes, expected_mti: bytes) -> str:
        try:
            mti, fields, raw = await self.session.exchange(stan, request, self.response_timeout_s)
        except RequestFailed as exc:
            return exc.outcome
        return self._outcome(expected_mti, mti, fields, raw)

    async def transaction(self, chooser: MixChooser, intended: float) -> None:
        """One customer transaction: a 0200, then for an approved withdrawal or
        deposit its 0220 completion (or, sometimes, a 0420 reversal)."""
        kind = chooser.next_kind()
        async with self.session.slots:
            stan = self.session.next_stan()
            request, original = self.factory.financial(kind, stan, chooser.amount(kind))
            outcome = await self._ask(stan, request, b"0210")
            self.recorder.record(kind.value, outcome, intended, trio.current_time())
            if outcome != "00" or kind not in (Kind.WITHDRAWAL, Kind.DEPOSIT):
                return
            follow_up = Kind.REVERSAL if chooser.reverse_instead_of_complete() else Kind.COMPLETION
            sent = trio.current_time()
            stan = self.session.next_stan()
            advice = self.factory.advice(
                follow_up, original, stan, reason=REVERSAL_REASON_FAILED
            )
            expected = b"0430" if follow_up is Kind.REVERSAL else b"0230"
            outcome = await self._ask(stan, advice, expected)
            self.recorder.record(follow_up.value, outcome, sent, trio.current_time())
