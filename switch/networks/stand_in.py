"""Stand-in (STIP) policy: what the switch may approve for a card network that cannot be
asked (issue 11 item 2). The acquirer supplies the facts; the rules are below.

Stand-in approves only a withdrawal that passes every rule below; anything else is ``91``:

* at or below the network's floor (``stand_in_floor_minor``; none configured: never);
* a PIN the switch has verified: with the network's PIN verification key configured
  (``stand_in_pvk``) the acquirer checks the PIN against the Visa PVV of track 2 first (a
  wrong PIN is ``55``); without it a PIN-bearing withdrawal is declined in stand-in (it is
  never approved unverified);
* an expiry date that is present and not past (the UTC month of the request);
* not key-entered (POS entry mode 01): only card-read PANs;
* the card's stand-in approvals today (UTC) stay within ``stand_in_daily_count_max`` and
  ``stand_in_daily_max_minor`` (default: one approval, the floor amount).

:func:`refusal` is the pure decision; :class:`StandIn` applies it for the acquirer
(``acquiring.py``) once a request never reached its network: it checks the PIN, records the
answer and queues the advice the issuer is owed. Apart from the acquirer so that forwarding a
request and answering for a network that cannot be asked stay two readable jobs.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from switch.authorization.network_port import NetworkDecision
from switch.authorization.outcomes import Outcome
from switch.authorization.transactions import Kind, parse_processing_code
from switch.db.runtime import Database
from switch.hsm import Hsm
from switch.hsm.errors import HsmError, PinVerificationFailed
from switch.hsm.verification_data import PinVerificationData
from switch.networks import transactions
from switch.networks.answers import network_effect, outcome_for
from switch.networks.base import AdviceKind, NetworkAuthorization
from switch.networks.registry import RegisteredNetwork
from switch.protocol.masking import mask_pan  # the one masking rule (6 + 4)

log = logging.getLogger("atm.networks")

KEY_ENTERED_MODES: Final = frozenset({"01"})  # ISO 8583 field 22 positions 1-2: manual


@dataclass(frozen=True, slots=True)
class StandInLimits:
    floor_minor: int | None = None
    daily_max_minor: int | None = None  # None: the floor
    daily_count_max: int = 1


@dataclass(frozen=True, slots=True)
class StandInRequest:
    processing_code: str
    amount_minor: int
    expiry: str | None  # YYMM
    pin_bearing: bool  # a PIN the acquirer could not verify (none verified counts as bearing)
    entry_mode: str | None  # field 22 positions 1-2 when known


@dataclass(frozen=True, slots=True)
class StandInUsage:
    """The card's stand-in approvals so far today."""

    count: int = 0
    amount_minor: int = 0


def refusal(
    limits: StandInLimits, request: StandInRequest, usage: StandInUsage, today: dt.date
) -> str | None:
    """Why stand-in must not approve (a short reason for the log), or None to approve."""
    floor = limits.floor_minor
    if floor is None:
        return "no stand-in configured"
    if parse_processing_code(request.processing_code).kind is not Kind.WITHDRAWAL:
        return "not a withdrawal"
    if request.amount_minor > floor:
        return "above the floor"
    if request.pin_bearing:
        return "PIN cannot be verified in stand-in"
    if request.entry_mode is not None and request.entry_mode[:2] in KEY_ENTERED_MODES:
        return "key-entered PAN"
    if not _expiry_valid(request.expiry, today):
        return "expired or no expiry"
    daily_max = floor if limits.daily_max_minor is None else limits.daily_max_minor
    if usage.count + 1 > limits.daily_count_max:
        return "daily stand-in count reached"
    if usage.amount_minor + request.amount_minor > daily_max:
        return "daily stand-in amount reached"
    return None


def _expiry_valid(expiry: str | None, today: dt.date) -> bool:
    if expiry is None or len(expiry) != 4 or not expiry.isdigit():
        return False
    month = int(expiry[2:])
    if not 1 <= month <= 12:
        return False
    return (2000 + int(expiry[:2]), month) >= (today.year, today.month)


def pvv_of(discretionary: str | None) -> tuple[str, str] | None:
    """(PVKI, PVV) from track 2 after the expiry: service code (3), PVKI (1), PVV (4).

    PVKI 0 means the card carries no PVV (Visa's convention: key indexes are 1-6)."""
    if discretionary is None or len(discretionary) < 8 or not discretionary[:8].isdigit():
        return None
    if not "1" <= discretionary[3] <= "6":
        return None
    return discretionary[3], discretionary[4:8]


async def verify_pin(
    hsm: Hsm, *, zpk: str | None, pvk: str | None, pan: str, pin_block: str | None,
    pin_block_format: int, pvv: tuple[str, str] | None,
) -> str:
    """``verified`` / ``wrong`` with the network's PVK and the card's PVV, else ``unverified``.

    The PIN block is the one translated to the network's zone PIN key; it is checked in the
    HSM against the Visa PVV (PVKI + PVV) of track 2's discretionary data.
    """
    if pin_block is None or pvk is None or zpk is None or pvv is None:
        return "unverified"
    pvki, value = pvv
    try:
        await hsm.verify_pin(
            tpk=zpk, pin_block=pin_block, pan=pan,
            verification=PinVerificationData("visa_pvv", pvk, value, pvki),
            pin_block_format=pin_block_format,
        )
    except PinVerificationFailed:
        return "wrong"
    except HsmError:
        return "unverified"  # a key that cannot do this: never approve unverified
    return "verified"


def stand_in_authorization_id(transaction_id: int) -> str:
    """Field 38 of a stand-in approval: ``S`` + 5 digits (never a network's own id form)."""
    return f"S{transaction_id % 100_000:05d}"


class AdviceQueue(Protocol):
    """The acquirer's durable advice queue (store-and-forward to the network)."""

    async def __call__(
        self, network: str, transaction_id: int, kind: AdviceKind, amount_minor: int, *,
        reason_code: str | None = None,
    ) -> bool: ...


class StandIn:
    """Answers for a network that never got the request: approve, decline, or ``91``."""

    def __init__(
        self, *, db: Database, hsm: Hsm, clock: Callable[[], dt.datetime], enqueue: AdviceQueue
    ) -> None:
        self._db = db
        self._hsm = hsm
        self._clock = clock
        self._enqueue = enqueue

    async def decide(
        self,
        registered: RegisteredNetwork,
        auth: NetworkAuthorization,
        *,
        entry_mode: str | None,
        pvv: tuple[str, str] | None,
    ) -> NetworkDecision:
        """Record and answer a request that never left for its network (stand-in or 91)."""
        # The stand-in rules first: a request that would not stand in anyway gets 91 whatever
        # its PIN, so the PIN is never evaluated for it (no PIN oracle while the network is down).
        refused = await self._refusal(registered, auth, entry_mode)
        if refused is None and auth.pin_block is not None:
            refused = self._pin_uncheckable(registered, pvv)
        if refused is not None:
            log.info("stand-in refused", extra={
                "reason": f"{registered.name} {mask_pan(auth.pan)}: {refused}"})
            await transactions.record_answer(self._db, auth.transaction_id,
                                              state="unanswered", response_code=None)
            return NetworkDecision(Outcome.UNAVAILABLE)
        if auth.pin_block is not None:
            declined = await self._pin(registered, auth, pvv)
            if declined is not None:
                return declined
        auth_id = stand_in_authorization_id(auth.transaction_id)
        await transactions.record_answer(self._db, auth.transaction_id, state="stand_in",
                                          response_code="00", authorization_id=auth_id)
        log.info("stand-in approval", extra={
            "reason": f"{registered.name} {mask_pan(auth.pan)} {auth.amount_minor}"})
        await self._enqueue(registered.name, auth.transaction_id, AdviceKind.STAND_IN,
                            auth.amount_minor)
        effect = network_effect(registered, auth) | {"stand_in": True}
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

    async def _pin(
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
            return await self._decline(registered, auth, "75")
        pin = await verify_pin(
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
        return await self._decline(registered, auth, code)

    async def _decline(
        self, registered: RegisteredNetwork, auth: NetworkAuthorization, code: str
    ) -> NetworkDecision:
        log.info("stand-in decline", extra={
            "reason": f"{registered.name} {mask_pan(auth.pan)} {code}"})
        await transactions.record_answer(self._db, auth.transaction_id,
                                          state="stand_in_declined", response_code=code)
        await self._enqueue(registered.name, auth.transaction_id, AdviceKind.STAND_IN_DECLINE,
                            auth.amount_minor, reason_code=code)
        return NetworkDecision(outcome_for(code))

    async def _refusal(
        self, registered: RegisteredNetwork, auth: NetworkAuthorization, entry_mode: str | None,
    ) -> str | None:
        """Why stand-in must not approve this request (:func:`refusal`), or None; PIN aside."""
        settings = registered.settings
        limits = StandInLimits(settings.stand_in_floor_minor,
                               settings.stand_in_daily_max_minor,
                               settings.stand_in_daily_count_max)
        now = self._clock()
        request = StandInRequest(
            auth.processing_code, auth.amount_minor, auth.expiry, False, entry_mode)
        quick = refusal(limits, request, StandInUsage(), now.date())
        if quick is not None:
            return quick
        count, amount = await transactions.stand_in_usage_today(
            self._db, registered.name, await self._hsm.pan_lookup_hash(auth.pan), now)
        return refusal(limits, request, StandInUsage(count, amount), now.date())
