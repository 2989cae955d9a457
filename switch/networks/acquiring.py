"""The switch as acquirer for cards it does not issue: the card-network side of the engine.

The engine (``switch/authorization/routed.py``) claims a 0200 whose card is not on file and
calls :meth:`NetworkAcquirer.authorize` (the ``CardNetworks`` Protocol of
``switch/authorization/network_port.py``); it records the decision, answers repeats, keeps
the MACs and the deadline, so a routed transaction is answered and repeated exactly like an
on-us one. Advices of a routed original are queued for its network by the engine's advice
batch in the same transaction (``auth_network_advice``, migration 0703); the senders here
deliver them.

For a routed 0200: PIN block translated by the HSM from the terminal's TPK to the network's
ZPK; a ``pending`` network transaction written; the network asked within the remaining
deadline; its code mapped to the terminal's (:data:`NETWORK_OUTCOMES`). When the request may
have reached the network but no answer came, a reversal (0420, reason 68) is queued so the
network undoes whatever it did; an approval the terminal was answered ``91`` for is reversed
too (:meth:`reverse_unanswered`): a ``91`` never leaves an effect (spec 5.6). Stand-in: see
:meth:`_unavailable`."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import trio

from switch.authorization.context import utc_now
from switch.authorization.network_port import NetworkDecision
from switch.authorization.outcomes import Outcome
from switch.authorization.request import FinancialRequest
from switch.authorization.security import TerminalKeys
from switch.db.runtime import Database, DatabaseUnavailable
from switch.hsm import Hsm
from switch.hsm.errors import HsmError, PinVerificationFailed
from switch.networks import stand_in, store_forward, transactions
from switch.networks.base import (
    AdviceKind,
    NetworkAdvice,
    NetworkAnswer,
    NetworkAuthorization,
    NetworkError,
    NetworkProtocolError,
    NetworkSignedOff,
    NetworkStatus,
    NetworkUnavailable,
)
from switch.networks.registry import NetworkRegistry, RegisteredNetwork, Routed, Unroutable
from switch.protocol.masking import mask_pan  # the one masking rule (6 + 4)

log = logging.getLogger("atm.networks")

# Kept back from the request deadline to record the outcome (and queue a reversal) after the
# network failed to answer.
cleanup_reserve_s: Final = 0.3
# Recording a failed request is shielded from the deadline, but never for longer than this.
cleanup_bound_s: Final = 2.0
# A pending network transaction older than this belongs to a process that died mid-request.
stale_pending_after_s: Final = 30.0
stale_batch_max: Final = 100

# The network's code -> the terminal's outcome. Codes about the switch-to-network link itself
# (30 format, 58, 63 MAC, 94 duplicate) are the switch's fault, not the cardholder's: 96.
# Any other code the terminal's spec does not know is a plain decline (05).
NETWORK_OUTCOMES: Final[Mapping[str, Outcome]] = MappingProxyType({
    "00": Outcome.APPROVED,
    "05": Outcome.DO_NOT_HONOUR,
    "12": Outcome.TRANSACTION_NOT_SUPPORTED,
    "13": Outcome.INVALID_AMOUNT,
    "14": Outcome.CARD_NOT_ON_FILE,
    "30": Outcome.SYSTEM_ERROR,
    "41": Outcome.CARD_LOST,
    "43": Outcome.CARD_STOLEN,
    "51": Outcome.INSUFFICIENT_FUNDS,
    "54": Outcome.CARD_EXPIRED,
    "55": Outcome.WRONG_PIN,
    "57": Outcome.CARD_CLOSED,
    "58": Outcome.SYSTEM_ERROR,
    "61": Outcome.AMOUNT_LIMIT_EXCEEDED,
    "63": Outcome.SYSTEM_ERROR,
    "65": Outcome.DAILY_COUNT_EXCEEDED,
    "75": Outcome.PIN_TRIES_EXCEEDED,
    "76": Outcome.PAYEE_NOT_FOUND,
    "91": Outcome.UNAVAILABLE,
    "92": Outcome.UNABLE_TO_ROUTE,
    "94": Outcome.SYSTEM_ERROR,
    "96": Outcome.SYSTEM_ERROR,
})


def outcome_for(network_code: str) -> Outcome:
    return NETWORK_OUTCOMES.get(network_code, Outcome.DO_NOT_HONOUR)


def network_rrn(transaction_id: int) -> str:
    """Field 37 toward the network: the acquirer assigns it, unique per transaction."""
    return f"{transaction_id % 10**12:012d}"


def stand_in_authorization_id(transaction_id: int) -> str:
    """Field 38 of a stand-in approval: ``S`` + 5 digits (never a network's own id form)."""
    return f"S{transaction_id % 100_000:05d}"


class NetworkAcquirer:
    """Routes, forwards and records; owns one store-and-forward sender per network."""

    def __init__(
        self,
        registry: NetworkRegistry,
        *,
        db: Database,
        hsm: Hsm,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.registry = registry
        self._db = db
        self._hsm = hsm
        self._clock = clock
        self.senders = {
            name: store_forward.StoreForward(
                db,
                name,
                send=registered.network.advise,
                build=self._advice_for,
                status=_status_of(registered),
                retry=registered.settings.advice_retry,
            )
            for name, registered in registry.networks.items()
        }

    # -- 0200 ------------------------------------------------------------------------------

    async def authorize(
        self, request: FinancialRequest, keys: TerminalKeys, received_at: dt.datetime
    ) -> NetworkDecision | None:
        """None when no route matches the PAN (the pipeline goes on to ``14``)."""
        decision = self.registry.route(request.pan)
        if isinstance(decision, Unroutable):
            log.info("unable to route", extra={"network": decision.network,
                                               "reason": decision.reason})
            return NetworkDecision(Outcome.UNABLE_TO_ROUTE)
        if not isinstance(decision, Routed):
            return None
        registered = decision.network
        pin_block = await self._translate_pin(registered, request, keys)
        if isinstance(pin_block, Outcome):
            return NetworkDecision(pin_block)
        auth = await self._open(registered, request, pin_block)
        # POS entry mode (field 22) when the request type carries it: key-entered PANs never
        # stand in.
        entry_mode: str | None = getattr(request, "entry_mode", None)
        pvv = stand_in.pvv_of(getattr(request, "track2_discretionary", None))
        try:
            answer = await self._ask(registered, auth)
        except NetworkSignedOff:
            await transactions.record_answer(self._db, auth.transaction_id, state="declined",
                                              response_code="92")
            return NetworkDecision(Outcome.UNABLE_TO_ROUTE)
        except NetworkUnavailable as exc:
            return await self._unavailable(registered, auth, sent=exc.sent, entry_mode=entry_mode,
                                           pvv=pvv)
        except NetworkError:  # a malformed or unauthenticated answer: it may have approved
            return await self._unavailable(registered, auth, sent=True, entry_mode=entry_mode,
                                           pvv=pvv)
        return await self._answered(registered, auth, answer)

    async def _translate_pin(
        self, registered: RegisteredNetwork, request: FinancialRequest, keys: TerminalKeys
    ) -> str | Outcome | None:
        """The PIN block under the network's ZPK (never clear), or the outcome that ends it."""
        if request.pin_block is None:
            return None
        zpk = registered.settings.zpk
        if keys.tpk is None or zpk is None:
            log.error("no PIN key to translate to", extra={"network": registered.name})
            return Outcome.SYSTEM_ERROR
        try:
            translated: str = await self._hsm.translate_pin(
                source_key=keys.tpk,
                target_key=zpk,
                pin_block=request.pin_block,
                pan=request.pan,
                source_format=request.pin_block_format,
                target_format=registered.settings.pin_block_format,
            )
        except PinVerificationFailed:
            return Outcome.WRONG_PIN  # the block does not decrypt to a PIN block
        except HsmError as exc:  # key usage / format policy: a configuration problem
            log.error("PIN translation refused", extra={"network": registered.name,
                                                        "reason": type(exc).__name__})
            return Outcome.SYSTEM_ERROR
        return translated

    async def _open(
        self, registered: RegisteredNetwork, request: FinancialRequest, pin_block: str | None
    ) -> NetworkAuthorization:
        key = request.key
        transmitted_at = self._clock()
        transaction_id = await transactions.open_transaction(self._db, transactions.NewTransaction(
            network=registered.name, terminal_id=key.terminal_id, stan=key.stan,
            transmission_dt=key.transmission_dt, acquirer_id=key.acquirer_id,
            transmitted_at=transmitted_at, pan_encrypted=await self._hsm.encrypt_pan(request.pan),
            pan_hash=await self._hsm.pan_lookup_hash(request.pan),
            pan_masked=mask_pan(request.pan), expiry=request.presented_expiry,
            processing_code=request.processing_code, amount_minor=request.amount_minor,
            currency=request.currency, from_account=request.from_account,
            to_account=request.to_account, acceptor={},
        ))
        return NetworkAuthorization(
            transaction_id=transaction_id, transmitted_at=transmitted_at, pan=request.pan,
            expiry=request.presented_expiry, processing_code=request.processing_code,
            amount_minor=request.amount_minor, currency=request.currency,
            terminal_id=key.terminal_id, acquirer_id=key.acquirer_id,
            rrn=network_rrn(transaction_id), terminal_stan=key.stan, pin_block=pin_block,
            pin_block_format=registered.settings.pin_block_format,
            from_account=request.from_account, to_account=request.to_account,
        )

    async def _ask(
        self, registered: RegisteredNetwork, auth: NetworkAuthorization
    ) -> NetworkAnswer:
        if registered.status is NetworkStatus.SIGNED_OFF:
            raise NetworkSignedOff("signed off")
        if registered.status is not NetworkStatus.SIGNED_ON:
            raise NetworkUnavailable("link down")
        # The plug-in gets the rest of the terminal's deadline minus what recording needs;
        # a plug-in that overruns is cut off here all the same.
        with trio.move_on_at(trio.current_effective_deadline() - cleanup_reserve_s):
            return await registered.network.authorize(auth)
        raise NetworkUnavailable("no answer within the deadline", sent=True)

    async def _answered(
        self, registered: RegisteredNetwork, auth: NetworkAuthorization, answer: NetworkAnswer
    ) -> NetworkDecision:
        outcome = outcome_for(answer.response_code)
        approved = outcome is Outcome.APPROVED
        await transactions.record_answer(
            self._db, auth.transaction_id, state="approved" if approved else "declined",
            response_code=answer.response_code, authorization_id=answer.authorization_id,
            network_reference=answer.network_reference,
        )
        if outcome is Outcome.UNAVAILABLE:  # the issuer itself is down: nothing to undo
            return NetworkDecision(outcome)
        if not approved:
            return NetworkDecision(outcome)
        extra = dict(answer.extra)
        if answer.authorization_id:
            extra["38"] = answer.authorization_id
        return NetworkDecision(outcome, extra, _effect(registered, auth))

    async def _unavailable(
        self,
        registered: RegisteredNetwork,
        auth: NetworkAuthorization,
        *,
        sent: bool,
        entry_mode: str | None = None,
        pvv: tuple[str, str] | None = None,
    ) -> NetworkDecision:
        """``91``, with a reversal queued when the request may have arrived; or stand-in.

        Stand-in only when the request never left (link down, overloaded): after a timeout
        the network may have approved, and the reversal already queued must stay the last
        word on that request. Stand-in approves withdrawals at or below the floor limit.
        """
        # Shielded (the terminal's deadline is close) but bounded: past the bound the
        # database is not answering, the pipeline answers 91 and the stale sweep reverses.
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + cleanup_bound_s
            decision = await self._record_unavailable(registered, auth, sent=sent,
                                                      entry_mode=entry_mode, pvv=pvv)
        if scope.cancelled_caught:
            raise DatabaseUnavailable("recording the network outcome timed out")
        return decision

    async def _record_unavailable(
        self,
        registered: RegisteredNetwork,
        auth: NetworkAuthorization,
        *,
        sent: bool,
        entry_mode: str | None,
        pvv: tuple[str, str] | None = None,
    ) -> NetworkDecision:
        if sent:
            await transactions.record_answer(self._db, auth.transaction_id,
                                              state="unanswered", response_code=None)
            await self._enqueue(registered.name, auth.transaction_id, AdviceKind.REVERSAL,
                                auth.amount_minor, reason_code="68")
            return NetworkDecision(Outcome.UNAVAILABLE)
        # The stand-in rules first: a request that would not stand in anyway gets 91 whatever
        # its PIN, so the PIN is never evaluated for it (no PIN oracle while the network is down).
        refused = await self._stand_in_refusal(registered, auth, entry_mode)
        if refused is None and auth.pin_block is not None:
            refused = self._pin_uncheckable(registered, pvv)
        if refused is not None:
            log.info("stand-in refused", extra={
                "reason": f"{registered.name} {mask_pan(auth.pan)}: {refused}"})
            await transactions.record_answer(self._db, auth.transaction_id,
                                              state="unanswered", response_code=None)
            return NetworkDecision(Outcome.UNAVAILABLE)
        if auth.pin_block is not None:
            declined = await self._stand_in_pin(registered, auth, pvv)
            if declined is not None:
                return declined
        auth_id = stand_in_authorization_id(auth.transaction_id)
        await transactions.record_answer(self._db, auth.transaction_id, state="stand_in",
                                          response_code="00", authorization_id=auth_id)
        log.info("stand-in approval", extra={
            "reason": f"{registered.name} {mask_pan(auth.pan)} {auth.amount_minor}"})
        await self._enqueue(registered.name, auth.transaction_id, AdviceKind.STAND_IN,
                            auth.amount_minor)
        effect = _effect(registered, auth) | {"stand_in": True}
        return NetworkDecision(Outcome.APPROVED, {"38": auth_id}, effect)

    @staticmethod
    def _pin_uncheckable(
        registered: RegisteredNetwork, pvv: tuple[str, str] | None
    ) -> str | None:
        """Why the switch cannot check this PIN in stand-in (then 91, never 55), or None."""
        settings = registered.settings
        if settings.stand_in_pvk is None or settings.zpk is None:
            return "PIN cannot be verified in stand-in"
        if pvv is None:
            return "no PVV on the card"
        if pvv[0] != settings.stand_in_pvki:
            return "PVKI of another key"
        return None

    async def _stand_in_pin(
        self, registered: RegisteredNetwork, auth: NetworkAuthorization,
        pvv: tuple[str, str] | None,
    ) -> NetworkDecision | None:
        """The PIN of a request that would stand in: None when it verified, else the decline.

        Wrong PINs are counted per card (PAN hash) and UTC day; at the network's
        ``stand_in_pin_tries_max`` the answer is 75 and the PIN is no longer evaluated. Both
        declines are advised to the issuer (store-and-forward), as stand-in processing does.
        """
        settings = registered.settings
        now = self._clock()
        pan_hash = await self._hsm.pan_lookup_hash(auth.pan)
        tries = await transactions.wrong_pin_tries_today(self._db, pan_hash, now)
        if tries >= settings.stand_in_pin_tries_max:
            return await self._stand_in_decline(registered, auth, "75")
        pin = await stand_in.verify_pin(
            self._hsm, zpk=settings.zpk, pvk=settings.stand_in_pvk, pan=auth.pan,
            pin_block=auth.pin_block, pin_block_format=auth.pin_block_format, pvv=pvv,
        )
        if pin == "verified":
            return None
        if pin != "wrong":  # the HSM could not check it: never approve unverified
            await transactions.record_answer(self._db, auth.transaction_id,
                                              state="unanswered", response_code=None)
            return NetworkDecision(Outcome.UNAVAILABLE)
        tries = await transactions.count_wrong_pin(self._db, pan_hash, now)
        code = "75" if tries >= settings.stand_in_pin_tries_max else "55"
        return await self._stand_in_decline(registered, auth, code)

    async def _stand_in_decline(
        self, registered: RegisteredNetwork, auth: NetworkAuthorization, code: str
    ) -> NetworkDecision:
        log.info("stand-in decline", extra={
            "reason": f"{registered.name} {mask_pan(auth.pan)} {code}"})
        await transactions.record_answer(self._db, auth.transaction_id,
                                          state="stand_in_declined", response_code=code)
        await self._enqueue(registered.name, auth.transaction_id, AdviceKind.STAND_IN_DECLINE,
                            auth.amount_minor, reason_code=code)
        return NetworkDecision(outcome_for(code))

    async def _stand_in_refusal(
        self, registered: RegisteredNetwork, auth: NetworkAuthorization, entry_mode: str | None,
    ) -> str | None:
        """Why stand-in must not approve this request (stand_in.py), or None; PIN aside."""
        settings = registered.settings
        limits = stand_in.StandInLimits(settings.stand_in_floor_minor,
                                        settings.stand_in_daily_max_minor,
                                        settings.stand_in_daily_count_max)
        now = self._clock()
        request = stand_in.StandInRequest(
            auth.processing_code, auth.amount_minor, auth.expiry, False, entry_mode)
        quick = stand_in.refusal(limits, request, stand_in.StandInUsage(), now.date())
        if quick is not None:
            return quick
        count, amount = await transactions.stand_in_usage_today(
            self._db, registered.name, await self._hsm.pan_lookup_hash(auth.pan), now)
        return stand_in.refusal(limits, request, stand_in.StandInUsage(count, amount),
                                now.date())

    # -- advices ---------------------------------------------------------------------------

    async def _enqueue(
        self, network: str, transaction_id: int, kind: AdviceKind, amount_minor: int, *,
        actual_amount_minor: int | None = None, reason_code: str | None = None,
    ) -> bool:
        queued = await store_forward.enqueue(
            self._db, transaction_id=transaction_id, network=network, kind=kind,
            amount_minor=amount_minor, actual_amount_minor=actual_amount_minor,
            reason_code=reason_code,
        )
        sender = self.senders.get(network)
        if queued and sender is not None:
            sender.wake()
        return queued

    async def _advice_for(self, queued: store_forward.QueuedAdvice) -> NetworkAdvice:
        """Rebuild the advice from its durable row (same fields on every repeat)."""
        row = queued.transaction
        original = NetworkAuthorization(
            transaction_id=row.transaction_id, transmitted_at=row.transmitted_at,
            pan=await self._hsm.decrypt_pan(row.pan_encrypted), expiry=row.expiry,
            processing_code=row.processing_code, amount_minor=row.amount_minor,
            currency=row.currency, terminal_id=row.terminal_id, acquirer_id=row.acquirer_id,
            rrn=network_rrn(row.transaction_id), terminal_stan=row.stan, pin_block=None,
            from_account=row.from_account, to_account=row.to_account,
        )
        return NetworkAdvice(
            advice_id=queued.advice_id, kind=queued.kind, attempt=queued.attempt,
            created_at=queued.created_at, original=original, amount_minor=queued.amount_minor,
            actual_amount_minor=queued.actual_amount_minor, reason_code=queued.reason_code,
            authorization_id=row.authorization_id, network_reference=row.network_reference,
        )

    # -- background ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Network links, store-and-forward senders and the stale-request sweep."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.registry.run)
            for sender in self.senders.values():
                await nursery.start(sender.run)
            nursery.start_soon(self._sweep_stale)
            task_status.started()

    async def reverse_stale(self, now: dt.datetime | None = None) -> int:
        """Reverse at the network what the terminal did not get ``00`` for.

        Requests left ``pending`` by a dead process, and network approvals whose terminal
        answer is a decided non-``00`` (a ``91`` after the deadline) or that stayed undecided
        past ``stale_pending_after_s``: the terminal's own 0420 finds no ``00`` original and
        does nothing, so the switch reverses them itself (one 0420, reason 68, each)."""
        before = (now or self._clock()) - dt.timedelta(seconds=stale_pending_after_s)
        stale = await transactions.stale_pending(self._db, before, stale_batch_max)
        for transaction_id in stale:
            row = await transactions.load_transaction(self._db, transaction_id)
            if row is None or row.state != "pending":
                continue
            await transactions.record_answer(self._db, transaction_id, state="unanswered",
                                              response_code=None)
            await self._enqueue(row.network, transaction_id, AdviceKind.REVERSAL,
                                row.amount_minor, reason_code="68")
        return len(stale) + await self.reverse_unanswered(now)

    async def reverse_unanswered(self, now: dt.datetime | None = None) -> int:
        """Reverse the network approvals whose terminal got no ``00``: decided otherwise (the
        engine voided the claim after the network had answered), or undecided long past the
        deadline. Also run right after a ``91`` of a routed request."""
        undecided_before = (now or self._clock()) - dt.timedelta(seconds=stale_pending_after_s)
        approved = await transactions.approved_not_answered_00(
            self._db, undecided_before, stale_batch_max
        )
        reversed_now = 0
        for transaction_id in approved:
            if await transactions.reverse_approved(self._db, transaction_id):
                reversed_now += 1
        if reversed_now:
            self.wake_advices()
        return reversed_now

    def wake_advices(self) -> None:
        """Advices were queued (by the engine's advice batch or a reversal): send them now."""
        for sender in self.senders.values():
            sender.wake()

    async def _sweep_stale(self) -> None:
        while True:
            await trio.sleep(stale_pending_after_s / 3)
            try:
                await self.reverse_stale()
            except Exception as exc:  # one failed pass must not stop the switch
                log.warning("stale network transaction sweep failed",
                            extra={"reason": repr(exc)})


def _status_of(registered: RegisteredNetwork) -> Callable[[], NetworkStatus]:
    def status() -> NetworkStatus:
        return registered.status

    return status


def _effect(registered: RegisteredNetwork, auth: NetworkAuthorization) -> dict[str, Any]:
    """What the stored answer remembers: where the transaction went (no local ledger effect)."""
    return {"kind": "network", "network": registered.name,
            "transaction_id": auth.transaction_id}


__all__ = ["NETWORK_OUTCOMES", "NetworkAcquirer", "NetworkDecision", "NetworkProtocolError",
           "outcome_for"]
