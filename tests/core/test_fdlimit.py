"""serve raises the soft open-file limit towards connections_max, never past the hard limit.
Method: lower the soft limit in a child process, call the function there, read the limits back."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import resource, sys
from switch.fdlimit import raise_open_file_limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
print(*raise_open_file_limit(int(sys.argv[1])), *resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def run_child(connections_max: int) -> list[int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(connections_max)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return [int(value) for value in out.stdout.split()]


def test_soft_limit_is_raised_to_what_connections_need() -> None:
    soft, hard, actual_soft, actual_hard = run_child(1_000)
    assert soft == actual_soft == min(1_000 + 256, hard)
    assert actual_hard == hard


def test_never_beyond_the_hard_limit() -> None:
    soft, hard, actual_soft, _ = run_child(10**9)
    assert soft == actual_soft == hard
