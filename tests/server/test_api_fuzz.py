"""Property-based fuzzing of a real `edn serve` from its own OpenAPI document (Schemathesis): for
every operation, at least 50 generated requests, valid and not; none may answer 5xx, the process
must stay up, and listing jobs must still answer 200 after each one."""
from __future__ import annotations

import itertools

import pytest
import schemathesis
from api_helpers import ServerProcess
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

EXAMPLES = 50  # per operation and mode; the whole run stays within a couple of minutes on 2 cores
FIXED = ("GET /v1/health", "GET /v1/models")


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory):
    # The shipped job kinds only (the test kinds would let the fuzzer queue ten-minute sleeps), and
    # confined to a scratch folder, so generated output folders never touch the machine's own.
    scratch = tmp_path_factory.mktemp("fuzz")
    srv = ServerProcess(scratch / "data", "--root", str(scratch), test_kinds=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_server):
    return schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json",
                                         headers={"Authorization": f"Bearer {fuzzed_server.token}"})


def fuzz(server, client, operation, mode: GenerationMode) -> int:
    """Send EXAMPLES generated requests to one operation; returns how many were sent."""
    auth = {"Authorization": f"Bearer {server.token}"}
    sent = 0

    @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case):
        nonlocal sent
        response = case.call(base_url=server.url, headers=auth, timeout=60)
        sent += 1
        where = (operation.label, mode.value, case.formatted_path, case.query, case.body)
        assert response.status_code < 500, (*where, response.status_code, response.text)
        assert server.proc.poll() is None, server.log()
        status, reply = client.json("GET", "/v1/jobs")
        assert status == 200, (*where, reply)

    try:
        call()
    except Unsatisfiable:  # nothing in the request can be made invalid (only free-text path parameters)
        assert mode == GenerationMode.NEGATIVE, operation.label
    return sent


@pytest.mark.timeout(600)  # a hung request fails the run instead of stalling `make test`
def test_no_generated_request_breaks_the_server(fuzzed_server, api_schema):
    # One Hypothesis run per operation and mode inside one test: Schemathesis' pytest plugin
    # (from_fixture) does not work with this pytest, and the schema comes from the running server.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    client = fuzzed_server.client()
    try:
        sent = {(op.label, mode.value): fuzz(fuzzed_server, client, op, mode)
                for op, mode in itertools.product(operations, GenerationMode)}
    finally:
        client.close()
    # Valid requests: EXAMPLES for each operation, but for those with nothing to vary (GET /v1/health).
    thin = {key: n for key, n in sent.items() if n < EXAMPLES and key[0] not in FIXED and key[1] == "positive"}
    assert not thin, f"operations with fewer than {EXAMPLES} generated requests: {thin}"
