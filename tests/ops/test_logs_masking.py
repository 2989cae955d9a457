"""Log lines apply the dialect's masking rules: fields masked, unknown extras dropped, no secret.

Method: format one record carrying a message full of secrets (the golden message of
``tests/protocol/test_masking.py``) and look for every secret in the JSON line.
"""

from __future__ import annotations

import json
import logging

from ops.logs import JsonFormatter
from switch.protocol.masking import WIPED
from tests.protocol.test_masking import SECRETS


def test_json_log_lines_mask_fields_and_drop_unknown_extras() -> None:
    record = logging.LogRecord("atm.test", logging.INFO, __file__, 1, "answered", None, None)
    record.__dict__.update({"fields": SECRETS, "terminal_id": "ATM00001", "pin": "1234"})
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["msg"] == "answered" and entry["terminal_id"] == "ATM00001"
    assert entry["fields"]["2"] == "622588******6789"
    assert entry["fields"]["52"] == WIPED
    assert "pin" not in entry
    for secret in ("0123456789ABCDEF", "6225880123456789", "=2812", "ABCDEF0123456789", "xxxxx"):
        assert secret not in line


def test_json_log_lines_scrub_free_text() -> None:
    """A PAN or track 2 in the message text itself is masked too."""
    record = logging.LogRecord(
        "atm.test", logging.INFO, __file__, 1, "card %s track %s", None, None
    )
    record.args = ("6225880123456789", "6225880123456789D2812101123456")
    line = JsonFormatter().format(record)
    assert json.loads(line)["msg"] == "card 622588******6789 track 622588******6789"
    assert "0123456789" not in line
