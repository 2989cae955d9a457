"""The docs cannot drift from the code: every code block in README.md and docs/*.md marked
``<!-- runnable -->`` (on the line before its opening fence) is run as a bash script with
``set -euo pipefail`` in a fresh directory, with this checkout's ``atm-switch``, ``atm-sim`` and
``python`` first on PATH, and must exit 0 and leave no embedded PostgreSQL running.

Mark a block runnable when a new user could paste it as is on a fresh machine (no server that
must already run, no placeholder to fill in); the others stay illustrations."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- runnable -->"
block_timeout_s = 300  # the slowest block (a short load test) takes well under this
FENCE = re.compile(r"^```")


@dataclass(frozen=True)
class Block:
    source: str  # file:line, for the test id and the failure message
    script: str


def runnable_blocks(path: Path) -> list[Block]:
    """The fenced blocks right after a MARKER line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        start = number + 1
        if start >= len(lines) or not FENCE.match(lines[start]):
            raise AssertionError(f"{path.name}:{number + 1}: {MARKER} not followed by a fence")
        end = next(i for i in range(start + 1, len(lines)) if FENCE.match(lines[i]))
        blocks.append(Block(f"{path.relative_to(ROOT)}:{start + 1}",
                            "\n".join(lines[start + 1:end]) + "\n"))
    return blocks


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [block for doc in DOCS for block in runnable_blocks(doc)]


def test_the_docs_mark_their_self_contained_commands() -> None:
    """At least the networks key ceremony, the demo, the simulator and the short load test."""
    sources = {block.source.split(":")[0] for block in BLOCKS}
    assert {"docs/networks.md", "docs/simulator.md", "docs/performance.md",
            "docs/operations.md"} <= sources, sources


def postgres_under(directory: Path) -> list[int]:
    found = []
    for process in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(directory) in cmdline:
            found.append(process.pid)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[block.source for block in BLOCKS])
def test_runnable_block(block: Block, tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "ATM_SWITCH_DATA_DIR": str(tmp_path / "atm-switch-data")}
    ran = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block.script], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=block_timeout_s,
                         check=False)
    assert ran.returncode == 0, (
        f"{block.source} exited {ran.returncode}\n--- script\n{block.script}"
        f"--- stdout\n{ran.stdout[-3000:]}\n--- stderr\n{ran.stderr[-3000:]}")
    assert postgres_under(tmp_path) == [], f"{block.source} left PostgreSQL running"
