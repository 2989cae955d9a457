"""Configuration precedence: defaults < TOML < environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.config import ConfigError, load_config


def test_defaults_work_on_a_laptop() -> None:
    config = load_config(environ={})
    assert config.server.port == 8583
    assert config.data_dir == Path("atm-switch-data")
    assert config.database.dsn == ""


def test_precedence(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[server]\nport = 9000\nhost = "0.0.0.0"\n[authorization]\nhold_expiry_s = 60\n'
    )
    env = {"ATM_SWITCH_SERVER_PORT": "9100", "ATM_SWITCH_DSN": "postgresql://x/y"}
    config = load_config(toml, environ=env, flags={"server.port": 9200, "server.host": None})
    assert config.server.port == 9200  # flag beats env beats file
    assert config.server.host == "0.0.0.0"  # a None flag does not override
    assert config.authorization.hold_expiry_s == 60
    assert config.database.dsn == "postgresql://x/y"


def test_bad_values_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_config(environ={"ATM_SWITCH_SERVER_PORT": "eighty"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nnope = 1\n")
    with pytest.raises(ConfigError, match="unknown configuration key"):
        load_config(bad, environ={})


def test_bridge_is_validated() -> None:
    assert load_config(environ={"ATM_SWITCH_DATABASE_BRIDGE": "trio-asyncio"}).database.bridge == (
        "trio-asyncio"
    )
    with pytest.raises(ConfigError, match="bridge"):
        load_config(environ={"ATM_SWITCH_DATABASE_BRIDGE": "carrier-pigeon"})
