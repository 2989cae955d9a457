"""The embedded PostgreSQL's lifecycle as an operator meets it: several commands on one data
directory (as docs/operations.md sets them up) share one server, and the last one to exit stops
it, whether it was stopped by SIGTERM, by Ctrl-C (SIGINT) or, for an earlier user, killed
outright. Real subprocesses, a real pgserver cluster; each test then looks for any postgres
process still serving that directory. stderr must stay one JSON object per line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

server_stop_wait_s = 20.0  # pg_ctl stop -w of an idle cluster takes well under this


def atm_switch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "switch.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def servers_serving(data_dir: Path) -> list[int]:
    """Pids of postmasters whose command line names ``data_dir``'s cluster."""
    pg_dir = str((data_dir / "pg").resolve())
    found = []
    for process in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and pg_dir in cmdline:
            found.append(process.pid)
    return found


def wait_no_server(data_dir: Path) -> list[int]:
    deadline = time.monotonic() + server_stop_wait_s
    while (left := servers_serving(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def assert_json_lines(stderr: str) -> None:
    for line in stderr.splitlines():
        if line.strip():
            assert isinstance(json.loads(line), dict), line


class Started:
    """A long-running command started in the background, with its first stdout line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "switch.cli", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.process.stdout is not None
        self.first_line = self.process.stdout.readline()
        if "listening" not in self.first_line:
            self.process.kill()
            _, err = self.process.communicate(timeout=30)
            raise AssertionError(f"did not start: {self.first_line!r} {err[-2000:]}")

    def stop(self, signum: int) -> tuple[int, str]:
        self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    # A test installation: serve listens in plain TCP (a production one needs TLS, issue 18).
    initialised = atm_switch("db", "init", "--mode", "test", "--data-dir", str(tmp_path))
    assert initialised.returncode == 0, initialised.stderr
    yield tmp_path
    for pid in servers_serving(tmp_path):  # never leave a server to the next test
        psutil.Process(pid).terminate()


def test_db_init_leaves_no_server(data_dir: Path) -> None:
    assert wait_no_server(data_dir) == []


def test_serve_and_admin_share_the_server_and_the_last_one_out_stops_it(data_dir: Path) -> None:
    """serve and admin on one data directory; serve gets SIGTERM (the server must keep running
    for admin), then admin gets Ctrl-C: no postgres is left. admin used to stay on pgserver's
    user list after SIGTERM, so the server outlived both."""
    where = ["--data-dir", str(data_dir)]
    serve = Started("serve", *where, "--port", "0", "--metrics-port", "0")
    admin = Started("admin", *where, "--port", "0")
    code, serve_err = serve.stop(signal.SIGTERM)
    assert code == 0, serve_err[-2000:]
    assert servers_serving(data_dir) != []  # admin still uses it
    code, admin_err = admin.stop(signal.SIGINT)
    assert code == 0, admin_err[-2000:]
    assert wait_no_server(data_dir) == []
    assert_json_lines(serve_err)
    assert_json_lines(admin_err)


def test_sigterm_to_the_last_user_stops_the_server(data_dir: Path) -> None:
    admin = Started("admin", "--data-dir", str(data_dir), "--port", "0")
    code, err = admin.stop(signal.SIGTERM)
    assert code == 0, err[-2000:]
    assert wait_no_server(data_dir) == []
    assert_json_lines(err)


def test_a_killed_user_does_not_keep_the_server_alive_for_ever(data_dir: Path) -> None:
    """SIGKILL leaves no chance to clean up: the server keeps running, but the next command on
    that directory drops the dead user from pgserver's list and stops the server as it leaves."""
    admin = Started("admin", "--data-dir", str(data_dir), "--port", "0")
    admin.process.kill()
    admin.process.wait(30)
    assert servers_serving(data_dir) != []
    listed = atm_switch("terminals", "list", "--data-dir", str(data_dir))
    assert listed.returncode == 0, listed.stderr
    assert wait_no_server(data_dir) == []


def test_demo_help_names_the_data_directory_it_really_uses() -> None:
    """`demo` runs in a temporary directory unless told otherwise; its help used to name the
    other commands' default (./atm-switch-data), which the demo never uses."""
    helped = atm_switch("demo", "--help")
    text = " ".join(helped.stdout.split())
    assert helped.returncode == 0 and "temporary directory" in text
    assert "default ./atm-switch-data" not in text
    assert "default ./atm-switch-data" in " ".join(atm_switch("serve", "--help").stdout.split())
