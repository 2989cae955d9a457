"""A small mutation fuzzer (no native dependency): seeds from the corpus, random byte-level
mutations, every input checked against its target's typed exceptions and the hang limit."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.fuzz.targets import HANG_S, Target

CORPUS: Final = Path(__file__).parent / "corpus"
INPUT_BYTES_MAX: Final = 8192
INTERESTING: Final = (b"\x00", b"\xff", b"0", b"9", b"=", b"D", b"\x02", b"\x03", b"\x10",
                      b"\x1b", b"\x1d", b"[", b"]", b'"', b"\n", b"9999", b"0000")


@dataclass
class Finding:
    target: str
    kind: str  # "untyped exception" or "hang"
    detail: str
    data: bytes


@dataclass
class Report:
    target: str
    inputs: int = 0
    typed_errors: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)


def seeds(name: str) -> list[bytes]:
    folder = CORPUS / name
    found = sorted(folder.iterdir()) if folder.is_dir() else []
    return [path.read_bytes() for path in found] or [b""]


def mutate(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """1-4 stacked mutations: flip, set, insert, delete, duplicate, splice, truncate."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(8)
        position = rng.randrange(len(buffer) + 1)
        if choice == 0 and buffer:
            index = rng.randrange(len(buffer))
            buffer[index] ^= 1 << rng.randrange(8)
        elif choice == 1 and buffer:
            buffer[rng.randrange(len(buffer))] = rng.randrange(256)
        elif choice == 2:
            buffer[position:position] = rng.choice(INTERESTING)
        elif choice == 3 and buffer:
            del buffer[position:position + rng.randint(1, 8)]
        elif choice == 4 and buffer:
            start = rng.randrange(len(buffer))
            buffer[position:position] = buffer[start:start + rng.randint(1, 32)]
        elif choice == 5:
            other = rng.choice(others)
            buffer[position:] = other[rng.randrange(len(other) + 1):]
        elif choice == 6:
            del buffer[position:]
        else:
            buffer[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(buffer[:INPUT_BYTES_MAX])


def check_one(name: str, target: Target, data: bytes) -> Finding | bool | None:
    """None: accepted; True: a typed error; a Finding: a bug."""
    started = time.perf_counter()
    try:
        target.run(data)
        outcome: Finding | bool | None = None
    except target.expected:
        outcome = True
    except Exception as exc:  # the bug this fuzzer looks for
        outcome = Finding(name, "untyped exception", f"{type(exc).__name__}: {exc}"[:200], data)
    if time.perf_counter() - started > HANG_S:
        return Finding(name, "hang", f"took over {HANG_S} s", data)
    return outcome


def fuzz(name: str, target: Target, *, seconds: float, inputs_max: int | None,
         seed: int = 0) -> Report:
    rng = random.Random(f"{seed}:{name}")
    corpus = seeds(name)
    report = Report(name)
    started = time.perf_counter()
    queue = list(corpus)
    while time.perf_counter() - started < seconds and (
        inputs_max is None or report.inputs < inputs_max
    ):
        data = queue[report.inputs] if report.inputs < len(queue) else mutate(
            rng.choice(corpus), rng, corpus)
        result = check_one(name, target, data)
        report.inputs += 1
        if isinstance(result, Finding):
            report.findings.append(result)
            if len(report.findings) >= 20:
                break
        elif result is True:
            report.typed_errors += 1
    report.seconds = round(time.perf_counter() - started, 1)
    return report
