"""One typed configuration object for every atm-switch process.

Sources, lowest precedence first: built-in defaults, a TOML file, environment
variables (``ATM_SWITCH_<SECTION>_<KEY>``, plus ``ATM_SWITCH_DATA_DIR`` and
``ATM_SWITCH_DSN``), then command-line flags. The defaults work on a laptop: an
embedded PostgreSQL in ``./atm-switch-data`` and the switch on port 8583.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


@dataclasses.dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8583
    # A terminal may have this many requests outstanding (spec 1).
    inflight_per_connection_max: int = 8
    connections_max: int = 20_000
    # Spec 1: a longer length closes the connection.
    frame_size_bytes_max: int = 4096
    # "binary2" (spec 1, 2-byte big-endian) or "ascii4" (4 ASCII digits).
    framing: str = "binary2"
    # Spec 5.6: every 0200 is answered within this deadline.
    request_deadline_s: float = 5.0
    # Spec 1: the switch MAY close a connection idle for more than 180 s.
    idle_timeout_s: float = 180.0
    # Graceful shutdown: in-flight requests get this long to finish.
    shutdown_grace_s: float = 10.0
    # Spec 10: a connection not signed on this long after it was accepted is closed
    # (zero-length frames and echoes do not extend it).
    sign_on_deadline_s: float = 10.0
    # Spec 10: connections not yet signed on are capped apart from connections_max;
    # one more evicts the oldest of them.
    not_signed_on_max: int = 64
    # The same cap per source address (issue 18): a flood from one address evicts only its
    # own connections, never a terminal connecting from elsewhere.
    not_signed_on_per_address_max: int = 32
    tls_cert: str | None = None
    tls_key: str | None = None
    # A TLS handshake that has not finished this long after accept closes the connection.
    tls_handshake_timeout_s: float = 5.0
    # PEM file of the CA that issues terminal certificates: when set, the TLS listener
    # requires a client certificate and a sign-on's field 41 must equal its subject CN.
    tls_client_ca: str | None = None
    # Issue 18: on a production installation `serve` refuses terminal links without
    # client-certificate TLS unless this says so explicitly (then logs ERROR on every start).
    plain_tcp: bool = False
    workers: int = 1
    # How long the interpreter lets one thread run before offering the GIL to another
    # (``sys.setswitchinterval``); 0 keeps Python's 5 ms. The asyncpg thread and the Trio
    # thread hand the GIL back and forth on every batch (docs/performance.md, "GIL").
    gil_switch_interval_s: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class OpsConfig:
    metrics_host: str = "127.0.0.1"
    # 0 disables the HTTP ops endpoint; serve uses 9583 by default.
    metrics_port: int = 9583
    log_level: str = "INFO"
    log_file: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DatabaseConfig:
    # Empty: start an embedded PostgreSQL (pgserver) in the data directory. The owner's DSN:
    # `db init` and the admin commands use it; `serve` does not (least privilege).
    dsn: str = ""
    # The role `db init` creates for `serve` (no superuser, no DDL, no server files).
    app_role: str = "atm_switch_app"
    # DSN `serve` connects with (keep passwords in the config file or the environment, not on
    # the command line); empty: the owner's DSN with the user replaced by app_role.
    app_dsn: str = ""
    pool_size_min: int = 2
    pool_size_max: int = 16
    # How long a call waits for PostgreSQL before failing with a typed error.
    call_timeout_s: float = 4.0
    # How asyncpg is reached from Trio: "uvloop-thread" (uvloop's loop in a helper thread),
    # "thread" (asyncio's own loop there, ~2.7x cheaper per round trip than trio-asyncio) or
    # "trio-asyncio"; see switch/db/bridges.py and docs/performance.md.
    bridge: str = "uvloop-thread"


@dataclasses.dataclass(frozen=True, slots=True)
class HsmConfig:
    # Name of an environment variable holding the LMK as hex; when unset the
    # LMK lives in <data_dir>/lmk.key (mode 0600).
    lmk_env: str = "ATM_SWITCH_LMK"
    # Test mode allows clear PINs/TMKs in fixtures and prints PIN mailers.
    test_mode: bool = False
    allow_weaker_pin_format: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizationConfig:
    # Spec 5.2: a withdrawal hold with no completion/reversal is presumed
    # dispensed after this long; a deposit hold is released.
    hold_expiry_s: int = 600
    # Spec 6 defaults, in minor units.
    dispense_unit_minor: int = 10_000
    withdrawal_max_minor: int = 250_000
    daily_withdrawal_max_minor: int = 2_000_000
    daily_withdrawal_count: int | None = None
    # Spec 10 transfer limits (the withdrawal limits do not apply to transfers).
    transfer_max_minor: int = 500_000
    daily_transfer_max_minor: int = 5_000_000
    pin_tries_max: int = 3
    # Spec 5.5: duplicate keys are kept at least 48 hours.
    idempotency_retention_h: int = 48
    sweep_interval_s: float = 5.0
    # Engine batches of each class (0200s, advices) out at once per node: a lone request leaves
    # at once while fewer are out; past it requests queue and leave together in the next
    # batch. 1 was measured best here (open-loop peak 451 against 150 0200/s with 8, 40% less
    # PostgreSQL CPU); the price is that a batch waiting on a row lock holds back its class
    # for up to database.call_timeout_s (docs/performance.md, "Batching policy").
    batches_in_flight_max: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class NetworksConfig:
    """Card networks (docs/networks.md). The default routes no card range anywhere, so a card
    not on file stays ``14`` and ``92`` is never produced (spec 6)."""

    # PAN prefix (1-11 digits) -> network name; the longest matching prefix wins.
    routes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Network name -> its settings: ``kind`` (the plug-in) plus the plug-in's own options.
    instances: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path = Path("./atm-switch-data")
    server: ServerConfig = dataclasses.field(default_factory=ServerConfig)
    ops: OpsConfig = dataclasses.field(default_factory=OpsConfig)
    database: DatabaseConfig = dataclasses.field(default_factory=DatabaseConfig)
    hsm: HsmConfig = dataclasses.field(default_factory=HsmConfig)
    authorization: AuthorizationConfig = dataclasses.field(default_factory=AuthorizationConfig)
    networks: NetworksConfig = dataclasses.field(default_factory=NetworksConfig)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Config:
        """Return a copy with dotted keys (``server.port``) replaced; None values are skipped."""
        return _apply(self, {k: v for k, v in overrides.items() if v is not None}, "flag")


_SECTIONS = ("server", "ops", "database", "hsm", "authorization", "networks")

# Every number's allowed range, inclusive (issue 11 item 6): a zero, negative, NaN or
# absurd limit is refused at start-up with its name, instead of a hang or a crash later.
# Checked complete against the dataclasses when this module loads.
_DAY_S = 86_400.0
NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "server.port": (0, 65_535),  # 0 picks a free port
    "server.inflight_per_connection_max": (1, 1_024),
    "server.connections_max": (1, 1_000_000),
    "server.frame_size_bytes_max": (64, 65_535),  # the 2-byte length prefix
    "server.request_deadline_s": (0.01, 600.0),
    "server.idle_timeout_s": (0.01, _DAY_S),
    "server.shutdown_grace_s": (0.0, 3_600.0),
    "server.sign_on_deadline_s": (0.01, 3_600.0),
    "server.not_signed_on_max": (1, 1_000_000),
    "server.not_signed_on_per_address_max": (1, 1_000_000),
    "server.tls_handshake_timeout_s": (0.01, 600.0),
    "server.workers": (1, 256),
    "server.gil_switch_interval_s": (0.0, 0.1),
    "authorization.batches_in_flight_max": (1, 64),  # 0: Python's default (5 ms)
    "ops.metrics_port": (0, 65_535),  # 0 disables the ops endpoint
    "database.pool_size_min": (1, 1_000),
    "database.pool_size_max": (1, 1_000),
    "database.call_timeout_s": (0.01, 3_600.0),
    "authorization.hold_expiry_s": (1, 30 * _DAY_S),
    "authorization.dispense_unit_minor": (1, 10**12),
    "authorization.withdrawal_max_minor": (1, 10**12 - 1),  # field 4 is n12
    "authorization.daily_withdrawal_max_minor": (1, 10**15),
    "authorization.transfer_max_minor": (1, 10**12 - 1),  # spec 10, field 4 is n12
    "authorization.daily_transfer_max_minor": (1, 10**15),
    "authorization.daily_withdrawal_count": (1, 1_000_000),  # None: no count limit
    "authorization.pin_tries_max": (1, 99),
    "authorization.idempotency_retention_h": (48, 24 * 366),  # spec 5.5: at least 48 hours
    "authorization.sweep_interval_s": (0.01, 3_600.0),
}
ENV_PREFIX = "ATM_SWITCH_"
DEFAULT_CONFIG_NAME = "atm-switch.toml"


def load_config(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration: defaults < TOML < environment < flags."""
    env = os.environ if environ is None else environ
    flags = dict(flags or {})
    config = Config()
    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path is None:
        data_dir = flags.get("data_dir") or env.get(ENV_PREFIX + "DATA_DIR") or config.data_dir
        candidate = Path(data_dir) / DEFAULT_CONFIG_NAME
        path = candidate if candidate.is_file() else None
    if path is not None:
        config = _apply(config, _flatten(_read_toml(Path(path))), f"file {path}")
    config = _apply(config, _from_environment(env), "environment")
    config = config.with_overrides(flags)
    _validate(config)
    return config


def _validate(config: Config) -> None:
    """Values whose type is right but whose meaning is not."""
    if config.database.bridge not in ("thread", "uvloop-thread", "trio-asyncio"):
        raise ConfigError(
            "database.bridge must be 'thread', 'uvloop-thread' or 'trio-asyncio', not "
            f"{config.database.bridge!r}"
        )
    for key, (low, high) in NUMBER_RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, not {value!r}")
        if not low <= value <= high:
            raise ConfigError(f"{key} must be between {low:g} and {high:g}, not {value!r}")
    if config.database.pool_size_min > config.database.pool_size_max:
        raise ConfigError("database.pool_size_min must not exceed database.pool_size_max")


def _numeric_keys() -> set[str]:
    keys = set()
    for section in _SECTIONS:
        for field in dataclasses.fields(type(getattr(Config(), section))):
            hint = typing.get_type_hints(type(getattr(Config(), section)))[field.name]
            kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
            if any(kind in (int, float) for kind in kinds):
                keys.add(f"{section}.{field.name}")
    return keys


if _numeric_keys() != set(NUMBER_RANGES):  # a new number without a range fails at import
    raise RuntimeError(f"NUMBER_RANGES out of date: {_numeric_keys() ^ set(NUMBER_RANGES)}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:  # found by tests/fuzz (config_toml)
        raise ConfigError(f"configuration file {path} is not UTF-8: {exc.reason}") from exc
    except OSError as exc:
        raise ConfigError(f"configuration file {path} cannot be read: {exc}") from exc


def _flatten(document: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if key in _SECTIONS and isinstance(value, Mapping):
            for sub_key, sub_value in value.items():
                flat[f"{key}.{sub_key}"] = sub_value
        else:
            flat[key] = value
    return flat


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if ENV_PREFIX + "DATA_DIR" in env:
        found["data_dir"] = env[ENV_PREFIX + "DATA_DIR"]
    if ENV_PREFIX + "DSN" in env:
        found["database.dsn"] = env[ENV_PREFIX + "DSN"]
    for section in _SECTIONS:
        section_type = type(getattr(Config(), section))
        for field in dataclasses.fields(section_type):
            name = f"{ENV_PREFIX}{section.upper()}_{field.name.upper()}"
            if name in env:
                found[f"{section}.{field.name}"] = env[name]
    return found


def _apply(config: Config, values: Mapping[str, Any], source: str) -> Config:
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    hints = typing.get_type_hints(Config)
    for key, raw in values.items():
        if "." in key:
            section, name = key.split(".", 1)
            if section not in _SECTIONS:
                raise ConfigError(f"unknown configuration section {section!r} ({source})")
            section_obj = getattr(config, section)
            section_hints = typing.get_type_hints(type(section_obj))
            if name not in section_hints:
                raise ConfigError(f"unknown configuration key {key!r} ({source})")
            sections.setdefault(section, {})[name] = _coerce(raw, section_hints[name], key, source)
        elif key == "data_dir":
            top["data_dir"] = Path(str(raw))
        else:
            raise ConfigError(f"unknown configuration key {key!r} ({source})")
    del hints
    for section, changes in sections.items():
        top[section] = dataclasses.replace(getattr(config, section), **changes)
    return dataclasses.replace(config, **top)


def _coerce(raw: Any, hint: Any, key: str, source: str) -> Any:
    """Turn a TOML/env/flag value into the field's declared type."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if raw is None or (isinstance(raw, str) and raw.lower() in ("", "none", "null")):
        if type(None) in allowed:
            return None
    for kind in allowed:
        if kind is type(None):
            continue
        if typing.get_origin(kind) in (Mapping, dict):  # tables ([networks]); env: JSON
            return _coerce_mapping(raw, key, source)
        try:
            if kind is bool:
                if isinstance(raw, bool):
                    return raw
                text = str(raw).strip().lower()
                if text in ("1", "true", "yes", "on"):
                    return True
                if text in ("0", "false", "no", "off"):
                    return False
                continue
            if kind is int:
                if isinstance(raw, bool):
                    continue
                return int(raw)
            if kind is float:
                return float(raw)
            if kind is str:
                return str(raw)
        except (TypeError, ValueError):
            continue
    raise ConfigError(f"configuration key {key!r} ({source}): {raw!r} is not a valid {hint}")


def _coerce_mapping(raw: Any, key: str, source: str) -> Mapping[str, Any]:
    """A TOML table as is; from the environment or a flag, a JSON object."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"configuration key {key!r} ({source}): not JSON: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"configuration key {key!r} ({source}): {raw!r} is not a table")
    return dict(raw)
