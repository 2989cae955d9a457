"""What the terminals sent and what they were told: the oracle's view of the outside.

One ``Sent`` per message key and class (spec 5.5), with every attempt: the first send, exact
repeats (0221/0421 for advices) and same-key sends with other content. ``code`` is the field
39 the terminal actually received, or None when no answer arrived (connection cut, switch
killed, terminal timeout).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.simulate.model import Key, Message

MessageClass = str  # "0200", "0220", "0420"


@dataclass(slots=True)
class Attempt:
    same_content: bool
    sent_at: float
    answered_at: float | None = None
    code: str | None = None
    error: str | None = None


@dataclass(slots=True)
class Sent:
    message_class: MessageClass
    key: Key
    fields: dict[str, str]  # the first content, as sent
    model: Message
    terminal: str
    card: str | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def start(self) -> float:
        return min((a.sent_at for a in self.attempts), default=float("inf"))

    @property
    def end(self) -> float:
        """When the terminal first held a decided (non-91) answer for this content; until
        then the message may still be committed (infinity when it never got one)."""
        times = [a.answered_at for a in self.attempts
                 if a.same_content and a.answered_at is not None and a.code not in (None, "91")]
        return min(times, default=float("inf"))

    def codes(self, *, same_content: bool = True) -> list[str | None]:
        return [a.code for a in self.attempts if a.same_content == same_content]

    @property
    def decided(self) -> bool:
        return any(code not in (None, "91") for code in self.codes())


@dataclass(slots=True)
class Journal:
    sent: dict[tuple[MessageClass, Key], Sent] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)  # seen on the wire (bad MAC, 96...)

    def add(self, sent: Sent) -> Sent:
        self.sent.setdefault((sent.message_class, sent.key), sent)
        return self.sent[(sent.message_class, sent.key)]

    def of_class(self, message_class: MessageClass) -> list[Sent]:
        return [s for s in self.sent.values() if s.message_class == message_class]

    @property
    def messages(self) -> int:
        return sum(len(s.attempts) for s in self.sent.values())
