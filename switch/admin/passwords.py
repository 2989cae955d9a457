"""Staff passwords as argon2id hashes (argon2-cffi, RFC 9106 low-memory profile).

Only the encoded hash ``$argon2id$...`` is stored. Verification of an unknown user still spends
one hash, so response time does not tell which user names exist.
"""

from __future__ import annotations

from typing import Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PASSWORD_CHARS_MIN: Final = 12  # PCI DSS 8.3.6: at least 12 characters
PASSWORD_CHARS_MAX: Final = 256  # bounds the hashing work an attacker can ask for

# RFC 9106 section 4 second recommended option: t=3, m=64 MiB, p=4.
_HASHER: Final = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4,
                                type=Type.ID)
_DUMMY_HASH: Final = _HASHER.hash("not a real password, for timing only")


class WeakPassword(ValueError):
    """A new password is too short or too long."""


def check_new_password(password: str) -> None:
    if not PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX:
        raise WeakPassword(
            f"a password is {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters"
        )


def hash_password(password: str) -> str:
    check_new_password(password)
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an absent user costs the same one hash."""
    if len(password) > PASSWORD_CHARS_MAX:
        return False
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
