"""pyiso8583 is a test dependency only: no module that ships at run time imports it.

Goal: ``pip install .`` (no extras, so no pyiso8583) must still give a working switch, and a
test oracle (``tests/protocol/reference_codec.py``) must not ship in the package. Method: in a
fresh interpreter, make ``iso8583`` unimportable with a meta-path finder, then import every
module of ``switch``, ``ops``, ``terminals`` and ``ledger_adapter`` (``__main__`` modules
excepted: importing them runs them) and report the ones that fail because of it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

RUNTIME_PACKAGES = ("switch", "ops", "terminals", "ledger_adapter")

_PROBE = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "iso8583" or name.startswith("iso8583."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocked())
    failures = []
    for package_name in sys.argv[1:]:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            try:
                importlib.import_module(info.name)
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.split(".")[0] == "iso8583":
                    failures.append(info.name)
    print("\\n".join(failures))
    """
)


def test_no_runtime_module_imports_pyiso8583() -> None:
    """Every runtime module imports with pyiso8583 absent."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *RUNTIME_PACKAGES],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], f"modules needing pyiso8583: {result.stdout.split()}"


def test_blocking_is_effective() -> None:
    """The probe would notice: with the block on, importing iso8583 itself fails."""
    probe = _PROBE.replace("for package_name in sys.argv[1:]:", "import iso8583\nfor _ in ():")
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "blocked" in result.stderr
