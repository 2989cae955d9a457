"""LMK lifecycle: created once with mode 0600, read from file or env, clear errors when bad."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from switch.config import Config, HsmConfig
from switch.hsm import LmkError, SoftwareHsm, ensure_lmk, load_lmk, open_hsm
from switch.hsm.lmk import create_lmk, lmk_path


def _config(tmp_path: Path, **hsm: object) -> Config:
    return Config(data_dir=tmp_path / "data", hsm=HsmConfig(**hsm))  # type: ignore[arg-type]


def test_ensure_creates_once_with_private_mode(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert ensure_lmk(config, environ={}) is True
    path = lmk_path(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = load_lmk(config, environ={})
    assert len(first) == 32
    assert ensure_lmk(config, environ={}) is False
    assert load_lmk(config, environ={}) == first


def test_keys_init_refuses_to_overwrite(tmp_path: Path) -> None:
    config = _config(tmp_path)
    create_lmk(config)
    with pytest.raises(LmkError, match="refusing to overwrite"):
        create_lmk(config)


def test_missing_lmk_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(LmkError, match="keys init"):
        load_lmk(_config(tmp_path), environ={})


@pytest.mark.parametrize("content", ["", "zz" * 32, "00" * 16, "00" * 33])
def test_malformed_lmk_file(tmp_path: Path, content: str) -> None:
    config = _config(tmp_path)
    lmk_path(config).parent.mkdir(parents=True)
    lmk_path(config).write_text(content)
    with pytest.raises(LmkError):
        load_lmk(config, environ={})
    with pytest.raises(LmkError):
        ensure_lmk(config, environ={})


def test_lmk_from_environment_wins(tmp_path: Path) -> None:
    config = _config(tmp_path, lmk_env="MY_LMK")
    env = {"MY_LMK": "11" * 32}
    assert ensure_lmk(config, environ=env) is False
    assert not lmk_path(config).exists()
    assert load_lmk(config, environ=env) == bytes([0x11]) * 32
    with pytest.raises(LmkError, match="MY_LMK"):
        load_lmk(config, environ={"MY_LMK": "11"})


async def test_open_hsm_uses_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, test_mode=True)
    monkeypatch.delenv("ATM_SWITCH_LMK", raising=False)
    ensure_lmk(config)
    hsm = open_hsm(config)
    assert isinstance(hsm, SoftwareHsm) and hsm.test_mode
    handle = await hsm.generate_key("P0")
    again = open_hsm(config)  # same LMK from disk unwraps the same handle
    assert await again.key_check_value(handle) == await hsm.key_check_value(handle)
