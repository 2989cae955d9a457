"""``atm-switch keys`` in process: JSON output, clear errors with exit 2, no clear keys printed.

Runs ``switch.cli.main`` with a temporary data directory (no PostgreSQL needed).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from switch.cli import main
from switch.hsm.primitives import kcv_tdes, tr31_unwrap, xor_bytes


class Cli:
    def __init__(self, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.data_dir = data_dir
        self.capsys = capsys

    def run(self, *argv: str) -> tuple[int, str, str]:
        code = main(["keys", *argv, "--data-dir", str(self.data_dir)])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self.run(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("ATM_SWITCH_LMK", raising=False)
    monkeypatch.delenv("ATM_SWITCH_CONFIG", raising=False)
    runner = Cli(tmp_path / "data", capsys)
    assert runner.json("init")["lmk_created"] is True
    return runner


def test_init_refuses_overwrite(cli: Cli) -> None:
    code, _, err = cli.run("init")
    assert code == 2 and "refusing to overwrite" in err


def test_missing_lmk_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATM_SWITCH_LMK", raising=False)
    code = main(["keys", "generate", "--usage", "P0", "--data-dir", str(tmp_path / "none")])
    assert code == 2 and "keys init" in capsys.readouterr().err


def test_generate_kcv_info(cli: Cli) -> None:
    made = cli.json("generate", "--usage", "M3")
    assert set(made) == {"handle", "kcv"}
    assert cli.json("kcv", made["handle"]) == {"kcv": made["kcv"]}
    info = cli.json("info", made["handle"])
    assert info["usage"] == "M3" and info["mode_of_use"] == "C" and info["kcv"] == made["kcv"]


def test_components_only_for_kek_and_they_form_the_key(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Issue 11 item 3: each component to its own new file, never two to one output.
    files = [str(tmp_path / "one"), str(tmp_path / "two")]
    code, _, err = cli.run("generate", "--usage", "P0", "--component-files", *files)
    assert code == 2 and "K0" in err
    for wrong in ([files[0]], [files[0], files[0]], [files[0], "/dev/stdout"]):
        code, _, err = cli.run("generate", "--usage", "K0", "--component-files", *wrong)
        assert code == 2 and "component" in err, wrong
    code, printed, _ = cli.run("generate", "--usage", "K0", "--component-files", *files, "--json")
    made = json.loads(printed)
    texts = [Path(f).read_text() for f in files]
    components = [t.split("component: ")[1].split()[0] for t in texts]
    made["components"] = [{"component": c, "kcv": f["kcv"]}
                          for c, f in zip(components, made["component_files"], strict=True)]
    assert all(c not in printed for c in components) and components[1] not in texts[0]
    parts = [bytes.fromhex(c["component"]) for c in made["components"]]
    assert kcv_tdes(xor_bytes(*parts)) == made["kcv"]
    code, _, err = cli.run("generate", "--usage", "K0", "--component-files", *files)
    assert code == 2 and "never overwritten" in err
    lines = "\n".join(f"{c['component']} {c['kcv']}" for c in made["components"])
    monkeypatch.setattr("sys.stdin", io.StringIO(lines + "\n"))
    formed = cli.json("form-from-components", "--usage", "K0")
    assert formed["kcv"] == made["kcv"]
    monkeypatch.setattr(
        "sys.stdin",
        io.StringIO(
            made["components"][0]["component"]
            + " 000000\n"
            + made["components"][1]["component"]
            + " 000000\n"
        ),
    )
    code, _, err = cli.run("form-from-components", "--usage", "K0")
    assert code == 2 and "KCV" in err


def test_export_import(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    tmk_clear = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    half = "00" * 16
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{tmk_clear.hex()}\n{half}\n"))
    kek = cli.json("form-from-components", "--usage", "K0")["handle"]
    secret = cli.json("generate", "--usage", "P0")  # non-exportable by default
    code, _, err = cli.run("export", secret["handle"], "--kek", kek)
    assert code == 2 and "non-exportable" in err
    key = cli.json("generate", "--usage", "P0", "--exportable")
    exported = cli.json("export", key["handle"], "--kek", kek, "--mode-of-use", "E")
    header, clear = tr31_unwrap(tmk_clear, exported["block"])
    assert header.mode_of_use == "E" and kcv_tdes(clear) == key["kcv"]
    imported = cli.json("import", exported["block"], "--kek", kek)
    assert imported["kcv"] == key["kcv"]
    code, _, err = cli.run("import", "B0016P0TE00N0000", "--kek", kek)
    assert code == 2 and "error" in err
