"""The reference card-network plug-in: a host reached over TCP speaking this project's own
ISO 8583 dialect (the host spec), e.g. another institution running this switch.

Configuration (``[networks.instances.NAME]``, kind ``iso_host``)::

    kind = "iso_host"
    host = "10.1.2.3"
    port = 8583
    zpk = "D0112P0TE00N0000..."   # common option: zone PIN key, LMK key block
    zak = "D0112M3TC00N0000..."   # zone MAC key (MAC on 02xx/04xx both ways); required
                                  # unless insecure = true (logged loudly at start-up)
    tls_ca = "/etc/atm/network-ca.pem"          # optional TLS, verifying the network
    tls_cert = "/etc/atm/switch-client.pem"     # ... with this client certificate
    tls_key = "/etc/atm/switch-client.key"
    acquirer_id = "4321"          # field 32 the network knows this switch by
    request_timeout_s = 3.0

It is small on purpose: the link (``link.py``) does the connection work and
``iso_messages.py`` the field mapping; this class only glues them to the interface.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import trio

from switch.hsm.errors import HsmError, MacVerificationFailed
from switch.networks import iso_messages
from switch.networks.base import (
    NetworkAdvice,
    NetworkAnswer,
    NetworkAuthorization,
    NetworkConfigError,
    NetworkError,
    NetworkProtocolError,
    NetworkServices,
    NetworkStatus,
)
from switch.networks.link import OutboundLink
from switch.networks.link_settings import LinkSettings
from switch.protocol.message import Message, mac_input_of, mac_of

log = logging.getLogger("atm.networks")

# Answers that carry no MAC (spec 8).
UNMACED_CODES: Final = frozenset({"30", "58"})
_LINK_OPTIONS: Final = {
    "node_id": str,
    "framing": str,
    "connect_timeout_s": float,
    "network_management_timeout_s": float,
    "echo_idle_s": float,
    "reconnect_backoff_min_s": float,
    "reconnect_backoff_max_s": float,
    "inflight_max": int,
    "send_timeout_s": float,
    "tls_ca": str,
    "tls_cert": str,
    "tls_key": str,
    "tls_server_name": str,
}


@dataclass(frozen=True, slots=True)
class IsoHostSettings:
    link: LinkSettings
    zak: str | None = None
    acquirer_id: str | None = None
    # The network's answer to a 0200 must arrive within this (and within the terminal's
    # deadline, whichever ends first).
    request_timeout_s: float = 3.0
    advice_timeout_s: float = 5.0

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> IsoHostSettings:
        known = {"host", "port", "zak", "acquirer_id", "request_timeout_s", "advice_timeout_s",
                 "insecure"}
        unknown = set(options) - known - set(_LINK_OPTIONS)
        if unknown:
            raise NetworkConfigError(f"network {name!r}: unknown options {sorted(unknown)}")
        try:
            link_options = {
                k: _LINK_OPTIONS[k](v) for k, v in options.items() if k in _LINK_OPTIONS
            }
            insecure = options.get("insecure", False)
            if not isinstance(insecure, bool):
                raise ValueError("insecure must be true or false")
            link = LinkSettings(
                host=str(options["host"]), port=int(options["port"]), insecure=insecure,
                **link_options
            )
            if options.get("zak") is None and not insecure:
                raise ValueError(
                    "no MAC key (zak): a network link without MACs can be forged; set "
                    "insecure = true only for a lab"
                )
            if options.get("zak") is None:
                log.error(
                    "INSECURE network link: no MAC key, answers are not authenticated",
                    extra={"reason": f"network {name} has insecure = true"},
                )
            acquirer = options.get("acquirer_id")
            if acquirer is not None and not (str(acquirer).isdigit() and len(str(acquirer)) <= 11):
                raise ValueError("acquirer_id must be 1-11 digits")
            return cls(
                link=link,
                zak=options.get("zak"),
                acquirer_id=None if acquirer is None else str(acquirer),
                request_timeout_s=float(options.get("request_timeout_s", 3.0)),
                advice_timeout_s=float(options.get("advice_timeout_s", 5.0)),
            )
        except KeyError as exc:
            raise NetworkConfigError(f"network {name!r} needs {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise NetworkConfigError(f"network {name!r}: {exc}") from exc


class IsoHostNetwork:
    """A :class:`~switch.networks.base.CardNetwork` over one :class:`OutboundLink`."""

    kind = "iso_host"

    def __init__(self, name: str, settings: IsoHostSettings, services: NetworkServices) -> None:
        self.name = name
        self.settings = settings
        self._hsm = services.hsm
        zak = settings.zak
        self.link = OutboundLink(
            settings.link,
            mac=None if zak is None else self._mac,
            check_response=None if zak is None else self._check_mac,
        )

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], services: NetworkServices
    ) -> IsoHostNetwork:
        return cls(name, IsoHostSettings.from_options(name, options), services)

    @property
    def status(self) -> NetworkStatus:
        return self.link.status

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.link.run(task_status=task_status)

    async def authorize(self, request: NetworkAuthorization) -> NetworkAnswer:
        fields = iso_messages.authorization_request(request, acquirer_id=self.settings.acquirer_id)
        deadline = min(
            trio.current_effective_deadline(), trio.current_time() + self.settings.request_timeout_s
        )
        response, _ = await self.link.request("0200", fields, deadline=deadline)
        self._require_mac(response)
        return iso_messages.authorization_answer(response, fields)

    async def advise(self, advice: NetworkAdvice) -> None:
        mti, fields = iso_messages.advice_message(advice, acquirer_id=self.settings.acquirer_id)
        deadline = trio.current_time() + self.settings.advice_timeout_s
        response, _ = await self.link.request(mti, fields, deadline=deadline)
        self._require_mac(response)
        if response.fields.get("39") != "00":
            raise NetworkError(f"advice answered {response.fields.get('39')!r}, not acknowledged")

    def _require_mac(self, response: Message) -> None:
        if self.settings.zak is not None and response.mac is None:
            if response.fields.get("39") not in UNMACED_CODES:
                raise NetworkProtocolError("answer without a MAC")

    async def _mac(self, mac_input: bytes) -> str:
        assert self.settings.zak is not None
        mac: str = await self._hsm.generate_mac(self.settings.zak, mac_input)
        return mac

    async def _check_mac(self, response: Message, raw: bytes) -> None:
        """Every answer to a MACed request: verified, or without a MAC only where the spec
        sends none (30/58); anything else resets the link (OutboundLink)."""
        assert self.settings.zak is not None
        if response.mac is None:
            if response.fields.get("39") in UNMACED_CODES:
                return
            raise NetworkProtocolError("answer without a MAC")
        try:
            await self._hsm.verify_mac(self.settings.zak, mac_input_of(raw), mac_of(raw))
        except (MacVerificationFailed, HsmError) as exc:
            raise NetworkProtocolError("the answer's MAC does not verify") from exc
