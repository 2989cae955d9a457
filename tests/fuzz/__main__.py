"""``python -m tests.fuzz --seconds N``: fuzz every decoder for N seconds each (outside CI).

Options: ``--target NAME`` (repeatable), ``--inputs K`` (stop a target after K inputs),
``--seed S``, ``--json``. Findings (an untyped exception or a hang) are written to
``tests/fuzz/findings/`` (not kept in the repository) and make the exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from tests.fuzz.engine import fuzz
from tests.fuzz.targets import TARGETS

FINDINGS = Path(__file__).parent / "findings"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per target")
    parser.add_argument("--inputs", type=int, default=None, help="per target, at most")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    reports = []
    for name in args.target or sorted(TARGETS):
        report = fuzz(name, TARGETS[name], seconds=args.seconds, inputs_max=args.inputs,
                      seed=args.seed)
        reports.append(report)
        for finding in report.findings:
            FINDINGS.mkdir(exist_ok=True)
            digest = hashlib.sha256(finding.data).hexdigest()[:16]
            (FINDINGS / f"{name}-{digest}.bin").write_bytes(finding.data)
        if not args.json:
            print(f"{name:22} {report.inputs:>8} inputs  {report.typed_errors:>8} typed errors"
                  f"  {len(report.findings)} findings  {report.seconds:>6} s", flush=True)
            for finding in report.findings[:3]:
                print(f"    {finding.kind}: {finding.detail}", flush=True)
    if args.json:
        print(json.dumps([{"target": r.target, "inputs": r.inputs, "typed_errors": r.typed_errors,
                           "findings": [f.detail for f in r.findings], "seconds": r.seconds}
                          for r in reports], indent=1))
    return 1 if any(r.findings for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
