"""The failover drill, short: real PostgreSQL primary + synchronous standby, two real switch
nodes, ATMs over real TCP; the primary is SIGKILLed and the standby promoted under load, then
one switch node is SIGKILLed. Nothing acknowledged is lost, nothing applied twice, no hold
left open, and the money adds up (``python -m loadtest.failover`` is the long version)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_failover_drill_short() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.failover", "--json", "--atms", "4",
         "--duration-s", "16", "--kill-primary-at-s", "4", "--promote-after-s", "1",
         "--kill-node-at-s", "10"],
        capture_output=True, text=True, timeout=400, check=False,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["promoted"] is True and result["new_primary"] is True
    assert result["nodes"] == 2
    assert result["acknowledged"] > 10, result
    assert result["lost_acknowledged"] == 0, result
    assert result["duplicated"] == 0, result
    assert result["held_at_end"] == 0, result
    assert result["unsettled"] == 0, result
    assert result["money_exact"] is True, result
    assert result["ledger_invariants"] == "ok", result
    assert result["downtime_s"] is not None and 0 < result["downtime_s"] < 30, result
    assert result["approved_after_node_kill"] > 0, result  # survivors kept serving
    assert result["captured"] > 0 and result["reversed"] > 0, result
    assert done.returncode == 0, result
