"""Schemathesis against the admin API's own OpenAPI document, over real TCP.

Goal: no operation answers 500 to anything the document allows or forbids, every answer
conforms to the documented status codes, content types and schemas, and invalid input is
refused. Method: the ``st`` command (schemathesis) generates requests from
``/api/openapi.json`` with an ``admin`` bearer token (every operation allowed), deterministic
generation (so CI is reproducible), and a bounded number of examples per operation. Logout is
excluded: it would end the token the run uses (it is covered by the RBAC test).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import trio

from tests.admin.conftest import AdminServer

EXAMPLES_PER_OPERATION = 25
RUN_TIMEOUT_S = 900
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts"


async def test_schemathesis_finds_no_failure(admin_server: AdminServer, tmp_path: Path) -> None:
    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    if not Path(st).exists():
        pytest.fail("schemathesis is a test dependency: pip install -e '.[test]'")
    token = await admin_server.login("admin")
    async with admin_server.client(token) as client:
        document = (await client.get("/api/openapi.json")).json()
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(document))
    with trio.fail_after(RUN_TIMEOUT_S):
        result = await trio.run_process(
            [st, "run", str(schema), "--url", admin_server.base_url,
             "--header", f"Authorization: Bearer {token}",
             "--checks", "not_a_server_error,status_code_conformance,"
             "content_type_conformance,response_schema_conformance,negative_data_rejection",
             "--exclude-operation-id", "session.logout",
             "--generation-deterministic", "--max-examples", str(EXAMPLES_PER_OPERATION),
             "--phases", "examples,coverage,fuzzing", "--no-color", "--workers", "1"],
            capture_stdout=True, capture_stderr=True, check=False,
            cwd=tmp_path,  # its example database (.schemathesis/) stays out of the tree
        )
    report = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
    (ARTEFACTS / "schemathesis.txt").parent.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "schemathesis.txt").write_text(report)
    assert result.returncode == 0, report[-6000:]
