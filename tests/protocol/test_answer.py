"""The typed reply of a handler (switch/protocol/answer.py): the engine's Answer carries its
field 39; bare bytes (a plug-in's handler, the core's own 30/58) have it read from them."""

from __future__ import annotations

from switch.protocol.answer import Answer, payload_of, response_code_of
from switch.protocol.message import encode_message

FIELDS = {"3": "011000", "11": "000123", "39": "51", "41": "ATM00001"}


def test_an_answer_is_counted_by_its_own_code_and_sent_as_its_bytes() -> None:
    encoded = encode_message("0210", FIELDS)
    answer = Answer("51", encoded)
    assert payload_of(answer) is encoded
    assert response_code_of(answer) == "51"
    # The code travels with the answer: nothing decodes the bytes for it.
    assert response_code_of(Answer("05", b"not a message")) == "05"


def test_bare_bytes_have_field_39_read_from_them() -> None:
    encoded = encode_message("0210", FIELDS)
    assert payload_of(encoded) is encoded
    assert response_code_of(encoded) == "51"
    assert (
        response_code_of(encode_message("0210", {k: v for k, v in FIELDS.items() if k != "39"}))
        is None
    )


def test_no_reply_sends_nothing() -> None:
    assert payload_of(None) is None
    assert response_code_of(None) is None
