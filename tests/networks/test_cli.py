"""``atm-switch serve`` with a wrong ``[networks]`` entry: a clear message and a non-zero exit,
not a traceback (run in-process with the per-test PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.cli import main


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[networks.routes]\n"4x" = "demo"\n', "route prefix '4x' is not all digits"),
        ('[networks.instances.demo]\nkind = "iso_host"\nport = 1\n', "needs 'host'"),
    ],
)
def test_serve_refuses_a_bad_networks_section(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, message: str
) -> None:
    assert main(["db", "init", "--data-dir", str(tmp_path), "--dsn", pg_dsn]) == 0  # the LMK
    (tmp_path / "atm-switch.toml").write_text(toml)
    code = main(["serve", "--data-dir", str(tmp_path), "--dsn", pg_dsn, "--port", "0",
                 "--metrics-port", "0"])
    assert code != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
