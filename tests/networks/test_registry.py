"""The registry: plug-ins by kind (built-ins and the ``atm_switch.networks`` entry points),
common options checked, and the three routing answers (not routed / 92 / routed)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any

import pytest
import trio

from switch.config import Config, NetworksConfig, load_config
from switch.networks import install, registry
from switch.networks.base import (
    CardNetwork,
    NetworkAdvice,
    NetworkAnswer,
    NetworkAuthorization,
    NetworkConfigError,
    NetworkServices,
    NetworkStatus,
)
from switch.networks.iso_host import IsoHostNetwork
from switch.networks.registry import NotRouted, Routed, Unroutable, build_registry

SERVICES = NetworkServices(hsm=None)


class EchoNetwork:
    """The smallest plug-in: approves everything (what docs/networks.md's example does)."""

    def __init__(self, name: str, options: Mapping[str, Any], services: NetworkServices) -> None:
        self.name = name
        self.options = dict(options)

    @property
    def status(self) -> NetworkStatus:
        return NetworkStatus.SIGNED_ON

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def authorize(self, request: NetworkAuthorization) -> NetworkAnswer:
        return NetworkAnswer("00", authorization_id="ECHO01")

    async def advise(self, advice: NetworkAdvice) -> None:
        return None


def test_a_plugin_satisfies_the_protocol() -> None:
    assert isinstance(EchoNetwork("x", {}, SERVICES), CardNetwork)


def test_entry_points_add_kinds_but_never_replace_built_ins(monkeypatch: Any) -> None:
    points = [
        metadata.EntryPoint("echo", f"{__name__}:EchoNetwork", registry.ENTRY_POINT_GROUP),
        metadata.EntryPoint("iso_host", f"{__name__}:EchoNetwork", registry.ENTRY_POINT_GROUP),
    ]

    def fake_entry_points(*, group: str) -> list[metadata.EntryPoint]:
        assert group == "atm_switch.networks"
        return points

    monkeypatch.setattr(registry.metadata, "entry_points", fake_entry_points)
    kinds = registry.available_kinds()
    assert kinds["echo"]() is EchoNetwork
    assert kinds["iso_host"]() == IsoHostNetwork.from_options
    config = NetworksConfig(routes={"62": "acme"},
                            instances={"acme": {"kind": "echo", "colour": "blue"}})
    built = build_registry(config, SERVICES)
    network = built.networks["acme"].network
    assert isinstance(network, EchoNetwork) and network.options == {"colour": "blue"}


def _registry(instances: Mapping[str, Any]) -> registry.NetworkRegistry:
    config = NetworksConfig(routes={"4": "on", "45": "off", "46": "nokind", "47": "absent"},
                            instances=instances)
    return build_registry(config, SERVICES, kinds={"echo": lambda: EchoNetwork})


def test_routing_answers() -> None:
    built = _registry({
        "on": {"kind": "echo"},
        "off": {"kind": "echo", "enabled": False},
        "nokind": {"kind": "not-installed"},
    })
    assert isinstance(built.route("5000000000000000"), NotRouted)
    routed = built.route("4000000000000000")
    assert isinstance(routed, Routed) and routed.network.name == "on"
    assert built.route("4500000000000000") == Unroutable("off", "signed off")
    assert built.route("4600000000000000") == Unroutable("nokind", "not registered")
    assert built.route("4700000000000000") == Unroutable("absent", "not registered")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"kind": "echo", "enabled": "yes"},
        {"kind": "echo", "pin_block_format": 2},
        {"kind": "echo", "stand_in_floor_minor": -1},
        {"kind": "echo", "stand_in_floor_minor": 1.5e3j},
        {"kind": "echo", "advice_retry_min_s": 5, "advice_retry_max_s": 1},
        {"kind": "echo", "zpk": 12},
    ],
)
def test_bad_common_options_are_refused(options: Mapping[str, Any]) -> None:
    with pytest.raises(NetworkConfigError):
        _registry({"on": options})


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "iso_host", "port": 1},
        {"kind": "iso_host", "host": "h", "port": 0},
        {"kind": "iso_host", "host": "h", "port": 1, "colour": "blue"},
        {"kind": "iso_host", "host": "h", "port": 1, "acquirer_id": "12a"},
        {"kind": "iso_host", "host": "h", "port": 1, "inflight_max": 0, "insecure": True},
        {"kind": "iso_host", "host": "h", "port": 1},  # no MAC key and not insecure
        {"kind": "iso_host", "host": "h", "port": 1, "insecure": "yes"},
        {"kind": "iso_host", "host": "h", "port": 1, "insecure": True, "tls_cert": "c.pem"},
    ],
)
def test_bad_iso_host_options_are_refused(options: Mapping[str, Any]) -> None:
    with pytest.raises(NetworkConfigError):
        build_registry(NetworksConfig(instances={"x": options}), SERVICES)


def test_toml_config_builds_an_iso_host_network(tmp_path: Any) -> None:
    path = tmp_path / "atm-switch.toml"
    path.write_text(
        '[networks.routes]\n"622126" = "cup"\n\n'
        '[networks.instances.cup]\nkind = "iso_host"\nhost = "127.0.0.1"\nport = 9583\n'
        'insecure = true\n'
        'stand_in_floor_minor = 20000\nrequest_timeout_s = 2.5\n'
    )
    config = load_config(path, environ={})
    built = build_registry(config.networks, SERVICES)
    cup = built.networks["cup"]
    assert cup.settings.stand_in_floor_minor == 20_000
    assert isinstance(cup.network, IsoHostNetwork)
    assert cup.network.settings.request_timeout_s == 2.5
    assert cup.status is NetworkStatus.LINK_DOWN  # not running yet


def test_install_does_nothing_without_networks() -> None:
    class App:
        config = Config()

    assert install(App()) is None
