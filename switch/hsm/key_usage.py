"""What each TR-31 key usage may do: one table, checked by every operation.

A handle's header (bound to the key by the key block MAC) says its usage,
algorithm and mode of use; an operation names the usages and modes it needs
and ``require`` refuses anything else with ``KeyUsageError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.hsm.errors import KeyUsageError
from switch.hsm.primitives.tr31 import Tr31Header


@dataclass(frozen=True, slots=True)
class UsageRule:
    description: str
    algorithms: frozenset[str]
    default_mode: str
    modes: frozenset[str]


def _rule(description: str, algorithms: str, default_mode: str, modes: str) -> UsageRule:
    return UsageRule(description, frozenset(algorithms), default_mode, frozenset(modes))


USAGE_RULES: dict[str, UsageRule] = {
    "P0": _rule("PIN encryption key (TPK/ZPK)", "TA", "B", "BED"),
    "M3": _rule("MAC key, ISO 9797-1 algorithm 3 (retail MAC)", "T", "C", "CGV"),
    "M6": _rule("MAC key, AES-CMAC", "A", "C", "CGV"),
    "K0": _rule("key encryption key (TMK/ZMK)", "TA", "B", "BED"),
    "V1": _rule("PIN verification key, IBM 3624", "T", "C", "CGV"),
    "V2": _rule("PIN verification key, Visa PVV", "T", "C", "CGV"),
    "C0": _rule("card verification key (CVV)", "T", "C", "CGV"),
    "B0": _rule("DUKPT base derivation key", "TA", "X", "X"),
    "D0": _rule("data encryption key", "TA", "B", "BED"),
    "E0": _rule("EMV issuer master key, application cryptograms (IMK-AC)", "T", "X", "X"),
}

# Usages stored non-exportable whatever a caller or an imported block asks: an issuer master
# key derives every card's keys, so a copy outside the HSM would let anyone mint cryptograms.
NEVER_EXPORTABLE_USAGES = frozenset({"E0"})

# Modes that allow each kind of operation.
MODES_DECRYPT = frozenset("BD")
MODES_ENCRYPT = frozenset("BE")
MODES_GENERATE = frozenset("CG")
MODES_VERIFY = frozenset("CV")
MODES_DERIVE = frozenset("X")
# Narrowing allowed when exporting: a key may leave with fewer rights, never more.
NARROWER_MODES: dict[str, frozenset[str]] = {
    "B": frozenset("BED"),
    "C": frozenset("CGV"),
}


def rule_for(usage: str) -> UsageRule:
    try:
        return USAGE_RULES[usage]
    except KeyError:
        raise KeyUsageError(f"key usage {usage!r} is not supported") from None


def check_new_key(usage: str, algorithm: str, length_bytes: int) -> UsageRule:
    """Validate the attributes of a key about to be created."""
    rule = rule_for(usage)
    if algorithm not in rule.algorithms:
        raise KeyUsageError(f"usage {usage} does not allow algorithm {algorithm!r}")
    allowed = (16, 24) if algorithm == "T" else (16, 24, 32)
    if length_bytes not in allowed:
        raise KeyUsageError(f"algorithm {algorithm} keys are {allowed} bytes, not {length_bytes}")
    return rule


def require(
    header: Tr31Header,
    usages: frozenset[str] | set[str],
    modes: frozenset[str],
    operation: str,
) -> None:
    """Refuse an operation on a key whose usage or mode of use does not allow it."""
    if header.key_usage not in usages:
        raise KeyUsageError(
            f"{operation} needs a key of usage {sorted(usages)}, not {header.key_usage}"
        )
    if header.mode_of_use not in modes:
        raise KeyUsageError(f"{operation} is not allowed by mode of use {header.mode_of_use!r}")
