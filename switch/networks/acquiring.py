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
too (:meth:`reverse_unanswered`): a ``91`` never leaves an effect (spec 5.6). A request that
never left is answered by stand-in (``stand_in.py``, see :meth:`_unavailable`); the code
mapping and field 37 are in ``answers.py``."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Final

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
from switch.networks.answers import network_effect, network_rrn, outcome_for
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
        self._stand_in = stand_in.StandIn(db=db, hsm=hsm, clock=clock, enqueue=self._enqueue)
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
        return NetworkDecision(outcome, extra, network_effect(registered, auth))

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
        return await self._stand_in.decide(registered, auth, entry_mode=entry_mode, pvv=pvv)

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


__all__ = ["NetworkAcquirer", "NetworkDecision", "NetworkProtocolError"]
