"""Redis over TLS (rediss://) with a password: the whole stack works, and the
password shows up in no log."""

from __future__ import annotations

import secrets
import shutil
from collections import Counter

import pytest
from e2e_helpers import check_exactly_once, make_stack, nums, producer_for, wait_for

from dreams_sms.sandbox.testing import SandboxAdmin

pytestmark = pytest.mark.e2e

PASSWORD = "tls-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def stack():
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required for the TLS test (Debian package openssl)")
    s = make_stack(workers=1, concurrency=2, redis_password=PASSWORD, redis_tls=True)
    s.start()
    yield s
    s.stop()


def test_campaign_over_rediss_with_password(stack):
    assert stack.redis_url.startswith("rediss://")
    admin = SandboxAdmin(stack.sandbox_url)
    admin.reset()
    p = producer_for(stack)
    rows = [(n, f"tls {i}") for i, n in enumerate(nums(600))]
    cid = p.send_bulk("Dreams", rows)
    wait_for(lambda: p.campaign_status(cid).done, 120, "the campaign over TLS", stack)
    res = check_exactly_once(admin, Counter(("Dreams", n, t) for n, t in rows))
    assert (res["accepted_once"], res["lost"], res["duplicates"]) == (600, 0, 0)
    logs = stack.logs()
    assert "rediss://" in logs or "Connected to" in logs
    assert PASSWORD not in logs
    for path in stack.dir.glob("*.log"):
        assert PASSWORD not in path.read_text(errors="replace"), path.name
