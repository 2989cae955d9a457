"""Issue 18, secure by default on the wire: ``serve`` on a production installation (``db init``
without ``--mode test``) refuses to listen for terminals without client-certificate TLS unless
the configuration says ``plain_tcp = true`` (then ERROR on every start); a test installation
listens in plain TCP with a warning; workers of ``serve --workers N`` get the DSN in their
environment, never on their command line.

Real ``atm-switch serve`` processes on a real PostgreSQL; the policy table itself is pure.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import trio

from switch.cli import main
from switch.config import ServerConfig
from tests.authorization.harness import FIXTURE
from tests.e2e.processes import prepare
from tests.scale.processes import serve_process

MTLS = {"tls_cert": "server.pem", "tls_key": "server.key", "tls_client_ca": "ca.pem"}


@pytest.mark.parametrize(("mode", "settings", "expected"), [
    ("production", {}, "refused"),
    ("production", {"tls_cert": "server.pem", "tls_key": "server.key"}, "refused"),
    ("production", {"plain_tcp": True}, logging.ERROR),
    ("production", MTLS, None),
    ("test", {}, logging.WARNING),
    ("test", MTLS, None),
    (None, {}, "refused"),  # no recorded mode counts as production
])
def test_the_terminal_link_policy(mode: str | None, settings: dict[str, object],
                                  expected: object) -> None:
    from switch.link_policy import PlainTerminalLinkRefused, check_terminal_link

    server = ServerConfig(**settings)  # type: ignore[arg-type]
    if expected == "refused":
        with pytest.raises(PlainTerminalLinkRefused, match="plain_tcp = true"):
            check_terminal_link(mode, server)
        return
    decided = check_terminal_link(mode, server)
    assert (None if decided is None else decided.level) == expected


def serve_once(data_dir: Path, dsn: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``serve`` as an operator starts it, expected to stop at once (refused)."""
    return subprocess.run(
        [sys.executable, "-m", "switch.cli", "serve", "--data-dir", str(data_dir), "--dsn", dsn,
         "--port", "0", "--metrics-port", "0"],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", **env},
        check=False)


def log_records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


async def test_production_refuses_plain_tcp_unless_configured(
    empty_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    init = ["db", "init", "--json", "--data-dir", str(data_dir), "--dsn", empty_dsn]
    assert await trio.to_thread.run_sync(main, init) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "production"
    refused = await trio.to_thread.run_sync(lambda: serve_once(data_dir, empty_dsn))
    assert refused.returncode != 0 and "listening" not in refused.stdout
    assert "refusing to listen for terminals with plain TCP" in refused.stderr
    assert "Traceback" not in refused.stderr
    # Said explicitly: it listens, and says at ERROR what that costs, on every start.
    for start in range(2):
        log_name = f"serve-{start}.log"
        async with serve_process(data_dir, empty_dsn, log_name=log_name,
                                 extra_env={"ATM_SWITCH_SERVER_PLAIN_TCP": "true"}) as serve:
            serve.terminate()
            await serve.process.wait()
        errors = [r for r in log_records(data_dir / log_name) if r.get("level") == "ERROR"]
        assert any("plain TCP on a production installation" in str(r.get("msg"))
                   for r in errors), errors


async def test_a_test_installation_listens_in_plain_tcp_with_a_warning(
    pg_dsn: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    await trio.to_thread.run_sync(prepare, data_dir, pg_dsn, FIXTURE)
    async with serve_process(data_dir, pg_dsn) as serve:
        serve.terminate()
        await serve.process.wait()
    records = log_records(data_dir / "serve.log")
    warned = [r for r in records if "test installation only" in str(r.get("msg"))]
    assert [r["level"] for r in warned] == ["WARNING"]


@pytest.mark.slow
async def test_workers_get_the_dsn_in_their_environment_not_argv(
    pg_dsn: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    await trio.to_thread.run_sync(prepare, data_dir, pg_dsn, FIXTURE)
    async with serve_process(data_dir, pg_dsn, workers=2) as serve:
        workers = serve.children()
        assert len(workers) == 2
        for worker in workers:
            argv = worker.cmdline()
            assert "--dsn" not in argv and not any(pg_dsn in arg for arg in argv), argv
            try:
                assert worker.environ().get("ATM_SWITCH_DSN") == pg_dsn
            except psutil.AccessDenied:  # another user's process: argv is what matters
                pass
        serve.terminate()
        assert await serve.process.wait() == 0


def test_worker_environment_outranks_a_stale_database_dsn() -> None:
    from switch.commands.serve import worker_environment

    env = worker_environment("postgresql://a@h/db", {"ATM_SWITCH_DATABASE_DSN": "postgresql://x",
                                                     "PATH": "/bin"})
    assert env == {"ATM_SWITCH_DSN": "postgresql://a@h/db", "PATH": "/bin"}
