"""Operating it: Flower behind auth, /metrics against the sandbox's record,
pause and resume from the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import pytest
import requests
from e2e_helpers import check_exactly_once, make_stack, nums, producer_for, wait_for
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e

AUTH = ("ops", "s3cret-flower")


@pytest.fixture(scope="module")
def stack():
    s = make_stack(workers=1, concurrency=2, flower=True, flower_auth=":".join(AUTH),
                   metrics=True)
    s.start()
    yield s
    s.stop()


def samples(url):
    out = {}
    for fam in text_string_to_metric_families(requests.get(url, timeout=5).text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_flower_refuses_without_credentials_and_lists_worker_with_them(stack):
    assert requests.get(stack.flower_url + "/", timeout=5).status_code == 401
    assert requests.get(stack.flower_url + "/api/workers", timeout=5).status_code == 401
    assert requests.get(stack.flower_url + "/", auth=("ops", "wrong"), timeout=5).status_code == 401

    def listed():
        r = requests.get(stack.flower_url + "/api/workers?refresh=1", auth=AUTH, timeout=10)
        return r.status_code == 200 and any(name.startswith("w1@") for name in r.json())

    wait_for(listed, 60, "Flower to list the worker", stack, every=1)


def test_flower_task_list_reads_as_an_activity_log(stack, admin):
    """Drain tasks say what they sent; the one-a-second ticks stay out of the list."""
    p = producer_for(stack)
    cid = p.send_bulk("Alerts", [(n, f"flower {i}") for i, n in enumerate(nums(300, 7_000_000))])
    wait_for(lambda: p.campaign_status(cid).done, 60, "the campaign", stack)
    time.sleep(3)  # several ticks have run by now

    def drains():
        tasks = requests.get(stack.flower_url + "/api/tasks", auth=AUTH, timeout=10).json()
        assert not any(t.get("name") == "dreams.tick" for t in tasks.values()), tasks
        return [t for t in tasks.values() if t.get("name") == "dreams.drain"
                and t.get("state") == "SUCCESS" and "'sender': 'Alerts'" in (t.get("result") or "")]

    wait_for(lambda: bool(drains()), 30, "drain results in Flower", stack, every=1)
    one = drains()[0]
    page = requests.get(f"{stack.flower_url}/task/{one['uuid']}", auth=AUTH, timeout=10).text
    assert " +03 " in page or " +03<" in page or "+03\n" in page  # Riyadh, as in the list
    assert " UTC" not in page
    sent = 0
    for task in drains():
        result = task["result"]
        if "'sent':" in result:
            assert "'calls':" in result and "'failed'" not in result  # only what happened
            sent += int(result.split("'sent': ")[1].split(",")[0].rstrip("}"))
    assert sent == 300


def test_metrics_match_the_sandbox_record(stack, admin):
    p = producer_for(stack)
    admin.faults(error_burst=3)
    numbers = nums(1500, 3_000_000)
    admin.refuse({numbers[10]: -117})
    expected = Counter(("Alerts", n, f"metric {i}") for i, n in enumerate(numbers))
    before = samples(stack.metrics_url)
    cid = p.send_bulk("Alerts", [(n, f"metric {i}") for i, n in enumerate(numbers)])
    wait_for(lambda: p.campaign_status(cid).done, 120, "the campaign", stack)
    key = ("dreams_messages_total", (("code", ""), ("outcome", "sent"), ("sender", "Alerts")))
    # Workers write their counts at the end of each drain task (at least every second).
    wait_for(lambda: samples(stack.metrics_url).get(key, 0) - before.get(key, 0) >= 1499, 15,
             "the metrics to catch up", stack)
    time.sleep(1.5)
    after = samples(stack.metrics_url)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    record = admin.stats()
    assert delta("dreams_messages_total", sender="Alerts", outcome="sent", code="") == \
        record["by_sender"]["Alerts"] == 1499
    assert delta("dreams_messages_total", sender="Alerts", outcome="failed", code="-117") == 1
    calls = sum(delta("dreams_provider_calls_total", endpoint="sendsms_multi", outcome=o)
                for o in ("ok", "provider_error", "unreachable", "server_error", "unknown",
                          "garbled"))
    assert calls == record["calls"]["sendsms_multi"]
    assert delta("dreams_provider_call_seconds_count", endpoint="sendsms_multi") == calls
    assert after[("dreams_stream_depth", (("priority", "normal"), ("sender", "Alerts")))] == 0
    assert after[("dreams_paused", (("reason", ""),))] == 0
    res = check_exactly_once(admin, expected - Counter({("Alerts", numbers[10], "metric 10"): 1}))
    assert (res["lost"], res["duplicates"]) == (0, 0)


def cli(stack, *args):
    return subprocess.run([sys.executable, "-m", "dreams_sms", *args], env=stack.env(),
                          capture_output=True, text=True, timeout=60, check=False)


def test_pause_stops_within_one_batch_and_resume_finishes(stack, admin):
    p = producer_for(stack)
    admin.faults(latency_ms=30)
    rows = [(n, f"pause {i}") for i, n in enumerate(nums(6000, 4_000_000))]
    cid = p.send_bulk("Promo", rows)
    wait_for(lambda: admin.stats()["accepted"] >= 500, 60, "sending to start", stack)
    out = cli(stack, "pause")
    assert out.returncode == 0, out.stderr
    at_pause = admin.stats()["accepted"]
    time.sleep(2)
    settled = admin.stats()["accepted"]
    # In flight at the pause: at most one batch per worker slot.
    assert settled - at_pause <= 2 * 100
    time.sleep(2)
    assert admin.stats()["accepted"] == settled
    status = cli(stack, "status")
    assert "paused: operator" in status.stdout
    assert cli(stack, "resume").returncode == 0
    wait_for(lambda: p.campaign_status(cid).done, 120, "the campaign after resume", stack)
    expected = Counter(("Promo", n, t) for n, t in rows)
    res = check_exactly_once(admin, expected)
    assert (res["accepted_once"], res["lost"], res["duplicates"]) == (6000, 0, 0)
