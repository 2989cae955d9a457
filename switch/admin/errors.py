"""The admin API's one error type: a stable machine code, a message, and the HTTP status.

Every error leaves the API as JSON ``{"code": ..., "message": ...}``; clients branch on
``code``, never on the message text.
"""

from __future__ import annotations

from typing import Final

STATUS_BY_CODE: Final[dict[str, int]] = {
    "bad_request": 400,
    "invalid_field": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "csrf": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "throttled": 429,
    "internal": 500,
    "unavailable": 503,
}


class ApiError(Exception):
    """A request the API refuses; ``code`` is one of :data:`STATUS_BY_CODE`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown API error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class Unchanged(ApiError):
    """A change to the state something already has (blocking a blocked card): refused with 409
    so the audit trail never shows ``blocked -> blocked``; the console says nothing changed."""

    def __init__(self, thing: str, state: str) -> None:
        super().__init__("conflict", f"the {thing} is already {state}: nothing changed")
        self.thing = thing
        self.state = state
