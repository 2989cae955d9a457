"""The card-network plug-in interface: what a network is asked to do, and what it answers.

A network is one class implementing :class:`CardNetwork` plus one ``[networks.instances.NAME]``
entry (docs/networks.md). The switch core never knows which network it talks to: the
authorization pipeline hands a :class:`NetworkAuthorization` to whichever network the BIN
table picks and turns the :class:`NetworkAnswer` into the terminal's answer.

Everything a plug-in receives is already safe to hold: the PIN block is translated by the HSM
to the network's zone PIN key (never clear), the PAN is only in memory for the call.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import trio

from switch.config import ConfigError
from switch.hsm.protocol import Hsm


class NetworkStatus(enum.Enum):
    """Whether a network takes traffic now (see docs/networks.md, "91 or 92")."""

    SIGNED_ON = "signed_on"  # link up and signed on: requests go out
    LINK_DOWN = "link_down"  # meant to be up, link down or reconnecting: 91 (or stand-in)
    SIGNED_OFF = "signed_off"  # signed off by configuration or by the network itself: 92


class NetworkError(Exception):
    """Base of the errors a network raises; each maps to one terminal answer."""


class NetworkUnavailable(NetworkError):
    """The network cannot answer now (link down, overloaded, no answer in time): ``91``.

    ``sent`` is True when the request may have reached the network (it timed out after being
    written), so the switch must reverse it at the network.
    """

    def __init__(self, reason: str, *, sent: bool = False) -> None:
        super().__init__(reason)
        self.sent = sent


class NetworkSignedOff(NetworkError):
    """The network is signed off (by configuration or by its own 0800/002): ``92``."""


class NetworkProtocolError(NetworkError):
    """The network's answer could not be used (malformed, bad MAC): treated as ``91``."""


class NetworkConfigError(ConfigError):
    """A ``[networks]`` setting is wrong; raised when the switch starts, never per request."""


class AdviceKind(enum.Enum):
    """Why an advice goes to a network (store-and-forward, one per kind per transaction)."""

    COMPLETION = "completion"  # the terminal's 0220: dispensed / stored, final amount
    REVERSAL = "reversal"  # the terminal's 0420, or the switch's own after a timeout
    STAND_IN = "stand_in"  # approved in stand-in: tell the issuer what we approved
    STAND_IN_DECLINE = "stand_in_decline"  # declined in stand-in (55, 75): the issuer is told


@dataclass(frozen=True, slots=True)
class NetworkAuthorization:
    """One 0200 for a card the network issues; what any network needs to authorize it.

    ``transaction_id`` is durable and unique: a plug-in derives its wire references (the STAN)
    from it, so a reversal after a crash names the same request. ``transmitted_at`` is fixed
    before the first transmission for the same reason.
    """

    transaction_id: int
    transmitted_at: dt.datetime
    pan: str
    expiry: str | None
    processing_code: str
    amount_minor: int
    currency: str
    terminal_id: str
    acquirer_id: str
    rrn: str
    terminal_stan: str
    pin_block: str | None  # under the network's zone PIN key, never clear
    pin_block_format: int = 0
    from_account: str | None = None
    to_account: str | None = None
    # Fields a plug-in may echo (12, 13, 18, 22, 42, 43) exactly as the terminal sent them.
    acceptor: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.amount_minor < 0:
            raise ValueError("amount_minor must not be negative")
        if not (self.pan.isdigit() and 12 <= len(self.pan) <= 19):
            raise ValueError("pan must be 12-19 digits")

    def __repr__(self) -> str:  # never print the PAN or the PIN block
        return (
            f"NetworkAuthorization(transaction_id={self.transaction_id}, "
            f"pan={self.pan[:6]}...{self.pan[-4:]}, processing_code={self.processing_code}, "
            f"amount_minor={self.amount_minor})"
        )


@dataclass(frozen=True, slots=True)
class NetworkAnswer:
    """The network's decision: its response code (spec 6 codes; others map to ``05``)."""

    response_code: str
    authorization_id: str | None = None
    # Fields the terminal's 0210 should carry from the network (54 balances), already valid.
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The network's own reference for later advices, when it has one.
    network_reference: str | None = None

    @property
    def approved(self) -> bool:
        return self.response_code == "00"


@dataclass(frozen=True, slots=True)
class NetworkAdvice:
    """A completion, reversal or stand-in advice for an earlier authorization.

    ``advice_id`` and ``created_at`` are durable: every repeat of one advice must carry the
    same wire fields (spec 5.3), so plug-ins derive them from these, never from the clock.
    ``attempt`` is 0 for the first transmission and counts repeats (0221/0421).
    """

    advice_id: int
    kind: AdviceKind
    attempt: int
    created_at: dt.datetime
    original: NetworkAuthorization  # pin_block is always None here
    amount_minor: int  # the final amount (completion, stand-in) or the original (reversal)
    actual_amount_minor: int | None = None  # partial reversal: what was dispensed (field 95)
    reason_code: str | None = None  # reversal reason (field 39 of a 0420)
    authorization_id: str | None = None  # the approval the advice refers to
    network_reference: str | None = None

    def __repr__(self) -> str:
        return (
            f"NetworkAdvice(advice_id={self.advice_id}, kind={self.kind.value}, "
            f"attempt={self.attempt}, transaction_id={self.original.transaction_id})"
        )


@runtime_checkable
class CardNetwork(Protocol):
    """What a card-network plug-in implements (docs/networks.md, "Adding a card network")."""

    name: str

    @property
    def status(self) -> NetworkStatus: ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the network's links up until cancelled; ``started()`` after the first attempt."""
        ...

    async def authorize(self, request: NetworkAuthorization) -> NetworkAnswer:
        """Ask the network; obey the caller's Trio deadline.

        Raises :class:`NetworkUnavailable` (``91``) or :class:`NetworkSignedOff` (``92``).
        """
        ...

    async def advise(self, advice: NetworkAdvice) -> None:
        """Deliver one advice; return only once the network acknowledged it.

        Raises :class:`NetworkError` when not acknowledged: store-and-forward repeats it.
        """
        ...


@dataclass(frozen=True, slots=True)
class NetworkServices:
    """What the switch lends a plug-in when it is built: the HSM (key handles only)."""

    hsm: Hsm
    node_id: str = "ATMSWTCH"


class NetworkFactory(Protocol):
    """A plug-in class (or function): ``factory(name, options, services) -> CardNetwork``.

    Found through the ``atm_switch.networks`` entry-point group, named by ``kind``.
    """

    def __call__(
        self, name: str, options: Mapping[str, Any], services: NetworkServices
    ) -> CardNetwork: ...
