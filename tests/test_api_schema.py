"""schemathesis against the OpenAPI document the API serves: no 5xx, and every
answer (status, content type, headers, body) as the document says.

A few examples per operation keep it quick (the machine is shared); each run
still covers every operation with a valid key, with the examples in the
document first (a message the key may send) and generated data after.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from dreams_sms.api.app import create_app, openapi_document
from dreams_sms.api.keys import ApiKeys
from dreams_sms.api.testing import running_api
from dreams_sms.config import Settings

STATE: dict[str, str] = {}


@pytest.fixture(scope="module")
def served(redis_server: str) -> Iterator[str]:
    r = redis.Redis.from_url(redis_server, decode_responses=True)
    r.flushdb()
    # The examples' sender and a few more; plenty of rate for the run.
    _, STATE["secret"] = ApiKeys(r).create(["Dreams", "Alerts", "Promo"], name="schemathesis")
    app = create_app(Settings(redis_url=redis_server).with_(api_rate=0.0), r)
    with running_api(app) as base:
        STATE["base"] = base
        yield base
    r.close()


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """(method, path, mode) for every operation in the document (read offline, for
    the ids): valid data for each, invalid data for each that takes any input."""
    document = openapi_document()
    out = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            out.append((method.upper(), path, GenerationMode.POSITIVE))
            if op.get("parameters") or op.get("requestBody"):
                out.append((method.upper(), path, GenerationMode.NEGATIVE))
    return out


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_every_answer_matches_the_document(served, method, path, mode):
    # The document as served over HTTP is the one tested (the committed copy equals
    # it: tests/test_api.py). The pytest plugin's own parametrize is not used: it
    # does not run on this pytest; hypothesis drives the same strategies.
    operation = schemathesis.openapi.from_url(f"{served}/openapi.json")[path][method]
    auth = {"Authorization": f"Bearer {STATE['secret']}"}
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call_and_validate(base_url=served, headers=auth)
        statuses.append(response.status_code)

    run()
    assert statuses and max(statuses) < 500, statuses


def test_the_fuzzing_reached_the_api(served):
    """The run above went through the key: /v1/senders answers its three senders."""
    import requests

    res = requests.get(f"{served}/v1/senders", timeout=10,
                       headers={"Authorization": f"Bearer {STATE['secret']}"})
    assert [s["name"] for s in res.json()["senders"]] == ["Dreams", "Alerts", "Promo"]
