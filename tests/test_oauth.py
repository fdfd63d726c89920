"""OAuth tokens: the three endpoints, the holder's renewal rules, and no leaked secrets."""

from __future__ import annotations

import json
import pickle
import threading
import time
import traceback
from urllib.parse import parse_qs

import pytest
import requests
from fakes import FakeAdapter

from dreams_sms.config import Secret, Settings
from dreams_sms.errors import (
    ConfigError,
    DreamsError,
    GarbledResponse,
    HttpRefused,
    OAuthError,
    OutcomeUnknown,
    ProviderError,
    ProviderUnreachable,
    ServerError,
)
from dreams_sms.provider.client import DreamsClient
from dreams_sms.provider.oauth import OAuthClient, Token, TokenHolder
from dreams_sms.sandbox.testing import running_sandbox

CLIENT_SECRET = "cl1ent-s3cret-value"
OAUTH = "https://provider.test/token"


def grant(access="acc-1", expires_in=3600, refresh=None) -> tuple[int, str]:
    data = {"access_token": access, "token_type": "Bearer", "expires_in": expires_in}
    if refresh:
        data["refresh_token"] = refresh
    return 200, json.dumps(data)


def refused(error="invalid_grant", status=400, description="nope") -> tuple[int, str]:
    return status, json.dumps({"error": error, "error_description": description})


class Clock:
    def __init__(self, now: float = 1_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(*answers, clock=None, **changes) -> tuple[OAuthClient, FakeAdapter]:
    adapter = FakeAdapter(*answers)
    session = requests.Session()
    session.mount("https://", adapter)
    settings = Settings(
        client_id="demo-client", client_secret=Secret(CLIENT_SECRET), oauth_url=OAUTH
    ).with_(**changes)
    return OAuthClient(settings, session, clock=clock or Clock()), adapter


def form_of(adapter: FakeAdapter, i: int = -1) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(adapter.sent[i][0].body).items()}


# -- OAuthClient -----------------------------------------------------------------


def test_generate_posts_client_credentials_form():
    oauth, adapter = make(grant(refresh="ref-1"), clock=Clock(500.0))
    token = oauth.generate()
    request = adapter.sent[-1][0]
    assert request.url == f"{OAUTH}/generate" and request.method == "POST"
    assert CLIENT_SECRET not in request.url
    assert form_of(adapter) == {
        "grant_type": "client_credentials",
        "client_id": "demo-client",
        "client_secret": CLIENT_SECRET,
    }
    assert token == Token("acc-1", "Bearer", 3600.0, "ref-1", 500.0)
    assert token.expires_at == 4100.0


def test_refresh_and_revoke_forms():
    oauth, adapter = make(grant("acc-2"), (200, '{"message": "Token revoked successfully"}'))
    assert oauth.refresh("ref-1").access_token == "acc-2"
    assert adapter.sent[0][0].url == f"{OAUTH}/refresh"
    assert form_of(adapter, 0)["grant_type"] == "refresh_token"
    assert form_of(adapter, 0)["refresh_token"] == "ref-1"
    oauth.revoke("acc-2")
    assert adapter.sent[1][0].url == f"{OAUTH}/revoke"
    assert form_of(adapter, 1) == {
        "token": "acc-2",
        "client_id": "demo-client",
        "client_secret": CLIENT_SECRET,
    }


def test_revoking_a_token_object_logs_out_fully():
    ok = (200, '{"message": "Token revoked successfully"}')
    oauth, adapter = make(ok, ok)
    oauth.revoke(Token("acc", "Bearer", 60, "ref", 0.0))
    assert [form_of(adapter, i)["token"] for i in (0, 1)] == ["ref", "acc"]
    # an access token already gone with its refresh token is not an error
    oauth, _ = make(ok, refused("invalid_token"))
    oauth.revoke(Token("acc", "Bearer", 60, "ref", 0.0))
    oauth, _ = make(refused("invalid_token"))
    with pytest.raises(OAuthError):
        oauth.revoke(Token("acc", "Bearer", 60, None, 0.0))


def test_expires_in_as_string_is_accepted():
    oauth, _ = make((200, '{"access_token": "a", "expires_in": "120"}'))
    token = oauth.generate()
    assert (token.expires_in, token.token_type) == (120.0, "Bearer")


@pytest.mark.parametrize(("status", "error"), [(400, "invalid_request"), (401, "invalid_client")])
def test_oauth_errors(status, error):
    oauth, _ = make(refused(error, status, "bad client"))
    with pytest.raises(OAuthError) as info:
        oauth.generate()
    assert (info.value.status, info.value.error, info.value.description) == (
        status,
        error,
        "bad client",
    )
    assert info.value.endpoint == "token/generate"


def test_oauth_error_without_json_still_names_the_status():
    oauth, _ = make((401, "<html>no</html>"))
    with pytest.raises(OAuthError) as info:
        oauth.generate()
    assert info.value.error == "http_401"


@pytest.mark.parametrize(
    "answer",
    [
        (200, "not json"),
        (200, "[]"),
        (200, '{"token_type": "Bearer"}'),
        (200, '{"access_token": "a", "expires_in": "soon"}'),
        (201, "{}"),
    ],
)
def test_unreadable_token_answers_are_garbled(answer):
    oauth, _ = make(answer)
    with pytest.raises(GarbledResponse):
        oauth.generate()


@pytest.mark.parametrize(("status", "retryable"), [(302, False), (404, False), (429, True)])
def test_token_endpoint_refusals_are_certain(status, retryable):
    oauth, _ = make((status, ""))
    with pytest.raises(HttpRefused) as info:
        oauth.generate()
    assert info.value.status == status and info.value.retryable is retryable
    assert not info.value.ambiguous


def test_transport_is_mapped_like_the_client():
    oauth, _ = make(
        (503, ""),
        requests.ReadTimeout("slow"),
        requests.ConnectTimeout("no route"),
    )
    with pytest.raises(ServerError):
        oauth.generate()
    with pytest.raises(OutcomeUnknown):
        oauth.generate()
    with pytest.raises(ProviderUnreachable):
        oauth.generate()


def test_missing_oauth_settings_are_a_config_error():
    oauth, adapter = make(client_secret=Secret(""))
    with pytest.raises(ConfigError):
        oauth.generate()
    assert adapter.sent == []


# -- Token -----------------------------------------------------------------------


def test_tokens_we_sent_never_come_back_in_an_error():
    oauth, _ = make(refused("invalid_grant", 400, "refresh zzTOKENzz is spent"), (200, "zzTOKENzz"))
    with pytest.raises(OAuthError) as info:
        oauth.refresh("zzTOKENzz")
    assert "zzTOKENzz" not in str(info.value) + repr(info.value)
    with pytest.raises(GarbledResponse) as garbled:
        oauth.revoke("zzTOKENzz")
    assert "zzTOKENzz" not in str(garbled.value) + garbled.value.body


def test_token_repr_hides_tokens_and_round_trips_as_dict():
    token = Token("acc-SECRET", "Bearer", 60.0, "ref-SECRET", 10.0)
    assert "SECRET" not in repr(token) and "SECRET" not in str(token)
    assert Token.from_dict(json.loads(json.dumps(token.as_dict()))) == token


# -- TokenHolder -----------------------------------------------------------------


def test_holder_generates_once_then_reuses():
    clock = Clock()
    oauth, adapter = make(grant("a1"), clock=clock)
    holder = TokenHolder(oauth, clock=clock)
    assert holder() == "a1"
    clock.now += 3000
    assert holder() == "a1"
    assert len(adapter.sent) == 1


def test_holder_refreshes_before_expiry_with_the_refresh_token():
    clock = Clock()
    oauth, adapter = make(grant("a1", refresh="r1"), grant("a2", refresh="r2"), clock=clock)
    holder = TokenHolder(oauth, margin=60, clock=clock)
    assert holder() == "a1"
    clock.now += 3600 - 60  # inside the margin: renew now, not after a refusal
    assert holder() == "a2"
    assert adapter.sent[-1][0].url.endswith("/refresh")
    assert form_of(adapter)["refresh_token"] == "r1"


def test_holder_generates_when_there_is_no_refresh_token():
    clock = Clock()
    oauth, adapter = make(grant("a1"), grant("a2"), clock=clock)
    holder = TokenHolder(oauth, clock=clock)
    holder()
    clock.now += 3599
    assert holder() == "a2"
    assert adapter.sent[-1][0].url.endswith("/generate")


def test_holder_falls_back_to_generate_on_invalid_grant():
    clock = Clock()
    oauth, adapter = make(
        grant("a1", refresh="r1"), refused("invalid_grant"), grant("a3"), clock=clock
    )
    holder = TokenHolder(oauth, clock=clock)
    holder()
    clock.now += 4000
    assert holder() == "a3"
    assert [r.url.rsplit("/", 1)[1] for r, _ in adapter.sent] == [
        "generate",
        "refresh",
        "generate",
    ]


def test_holder_does_not_hide_other_refresh_failures():
    clock = Clock()
    oauth, _ = make(grant("a1", refresh="r1"), refused("invalid_client", 401), clock=clock)
    holder = TokenHolder(oauth, clock=clock)
    holder()
    clock.now += 4000
    with pytest.raises(OAuthError):
        holder()


def test_margin_never_exceeds_half_the_tokens_life():
    clock = Clock()
    oauth, _adapter = make(grant("a1", expires_in=10), grant("a2", expires_in=10), clock=clock)
    holder = TokenHolder(oauth, margin=60, clock=clock)
    assert holder() == "a1"
    clock.now += 4
    assert holder() == "a1"
    clock.now += 1.5
    assert holder() == "a2"


def test_invalidate_forces_renewal_and_ignores_the_refused_shared_token():
    class Store:
        def __init__(self):
            self.token = None

        def load(self):
            return self.token

        def save(self, token):
            self.token = token

    clock = Clock()
    store = Store()
    oauth, _ = make(grant("a1", refresh="r1"), grant("a2"), clock=clock)
    holder = TokenHolder(oauth, clock=clock, store=store)
    assert holder() == "a1" and store.token.access_token == "a1"
    holder.invalidate()
    assert holder() == "a2" and store.token.access_token == "a2"


def test_holder_takes_a_fresh_token_from_the_store():
    clock = Clock()
    shared = Token("shared", "Bearer", 3600, None, clock.now)

    class Store:
        def load(self):
            return shared

        def save(self, token):
            raise AssertionError("nothing to save")

    oauth, adapter = make(clock=clock)
    assert TokenHolder(oauth, clock=clock, store=Store())() == "shared"
    assert adapter.sent == []


def test_holder_renews_once_under_concurrency():
    oauth, adapter = make(grant("a1"), grant("a2"), clock=time.time)
    real_send = adapter.send

    def slow_send(request, **kwargs):
        time.sleep(0.05)
        return real_send(request, **kwargs)

    adapter.send = slow_send
    holder = TokenHolder(oauth)
    seen: list[str] = []
    threads = [threading.Thread(target=lambda: seen.append(holder())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == ["a1"] * 8
    assert len(adapter.sent) == 1


def test_holder_plugs_into_the_client_as_the_token_callable():
    oauth, _ = make(grant("a1"), clock=time.time)
    adapter = FakeAdapter((200, "999"))
    session = requests.Session()
    session.mount("https://", adapter)
    settings = Settings(user="demo", secret_key=Secret("k"), base_url="https://provider.test/api")
    DreamsClient(settings, session=session, token=TokenHolder(oauth)).check_user()
    assert adapter.sent[-1][0].headers["Authorization"] == "Bearer a1"


def test_client_retries_once_with_a_new_token_when_the_token_is_refused():
    tokens = grant("a1", refresh="r1"), grant("a2", refresh="r2"), grant("a3")
    oauth, _ = make(*tokens, clock=time.time)
    adapter = FakeAdapter((200, "-110"), (200, "Result:Success"), (200, "-110"), (200, "-110"))
    session = requests.Session()
    session.mount("https://", adapter)
    settings = Settings(user="demo", secret_key=Secret("k"), base_url="https://provider.test/api")
    client = DreamsClient(settings, session=session, token=TokenHolder(oauth))
    assert client.send("966500000001", "hi", "Dreams").body == "Result:Success"
    assert [r.headers["Authorization"] for r, _ in adapter.sent] == ["Bearer a1", "Bearer a2"]
    with pytest.raises(ProviderError):  # refused again with a fresh token: a real -110
        client.check_user()
    assert len(adapter.sent) == 4


def test_client_retries_once_on_an_oauth_style_401():
    tokens = grant("a1", refresh="r1"), grant("a2", refresh="r2")
    oauth, _ = make(*tokens, clock=time.time)
    refused_401 = (401, json.dumps({"error": "invalid_token"}))
    adapter = FakeAdapter(refused_401, (200, "5"))
    session = requests.Session()
    session.mount("https://", adapter)
    settings = Settings(user="demo", secret_key=Secret("k"), base_url="https://provider.test/api")
    assert DreamsClient(settings, session=session, token=TokenHolder(oauth)).balance() == 5.0
    assert len(adapter.sent) == 2


def test_holder_repr_hides_the_token():
    oauth, _ = make(grant("acc-SECRET", refresh="ref-SECRET"), clock=time.time)
    holder = TokenHolder(oauth)
    holder()
    assert "SECRET" not in repr(holder) and CLIENT_SECRET not in repr(oauth)


@pytest.mark.parametrize(
    "answer",
    [
        refused("invalid_client", 401, f"client_secret={CLIENT_SECRET}"),
        (200, json.dumps({"access_token": "leaky", "client_secret": CLIENT_SECRET})),
        (500, CLIENT_SECRET),
        (200, f"echo {CLIENT_SECRET}"),
        requests.ReadTimeout(f"client_secret={CLIENT_SECRET}"),
    ],
)
def test_no_client_secret_in_any_oauth_exception(answer):
    oauth, _ = make(answer)
    with pytest.raises(DreamsError) as info:
        oauth.generate()
    exc = info.value
    shown = "\n".join(
        [
            str(exc),
            repr(exc),
            "".join(traceback.format_exception(exc)),
            repr(pickle.loads(pickle.dumps(exc))),
            *(repr(v) for v in vars(exc).values()),
        ]
    )
    assert CLIENT_SECRET not in shown


# -- sandbox: the life cycle over real HTTP ------------------------------------------

DEMO_SECRET, DEMO_CLIENT_SECRET = "demo-secret", "demo-client-secret"


def live_settings(sandbox, **changes) -> Settings:
    return Settings(
        user="demo",
        secret_key=Secret(""),  # bearer only: proves the token alone authenticates
        client_id="demo-client",
        client_secret=Secret(DEMO_CLIENT_SECRET),
        base_url=sandbox.api_url,
        oauth_url=sandbox.oauth_url,
        connect_timeout=1.0,
        read_timeout=0.5,
    ).with_(**changes)


def assert_clean(exc: BaseException, *tokens: str) -> None:
    shown = "\n".join(
        [
            str(exc),
            repr(exc),
            "".join(traceback.format_exception(exc)),
            *(repr(v) for v in vars(exc).values()),
        ]
    )
    for secret in (DEMO_SECRET, DEMO_CLIENT_SECRET, *tokens):
        assert secret not in shown


def test_generate_use_revoke_and_refused_after_revoke(sandbox, sandbox_admin):
    settings = live_settings(sandbox)
    oauth = OAuthClient(settings)
    token = oauth.generate()
    assert token.token_type == "Bearer" and token.expires_in == 3600 and token.refresh_token
    client = DreamsClient(settings, token=lambda: token.access_token)
    client.check_user()
    assert client.send("966500000001", "via oauth", "Dreams").body == "Result:Success"
    assert sandbox_admin.messages()[-1]["user"] == "demo"

    oauth.revoke(token)
    with pytest.raises(ProviderError) as info:
        client.check_user()
    assert info.value.code == -110
    assert_clean(info.value, token.access_token, token.refresh_token)
    with pytest.raises(OAuthError) as again:  # already revoked
        oauth.revoke(token.access_token)
    assert (again.value.status, again.value.error) == (400, "invalid_token")
    with pytest.raises(OAuthError) as spent:
        oauth.refresh(token.refresh_token)
    assert spent.value.error == "invalid_grant"
    assert_clean(spent.value, token.refresh_token)


def test_wrong_client_secret_is_invalid_client(sandbox, sandbox_admin):
    oauth = OAuthClient(live_settings(sandbox, client_secret=Secret("not-the-secret")))
    with pytest.raises(OAuthError) as info:
        oauth.generate()
    assert (info.value.status, info.value.error) == (401, "invalid_client")
    assert_clean(info.value, "not-the-secret")
    with pytest.raises(OAuthError) as info:
        OAuthClient(live_settings(sandbox, client_id="nobody")).refresh("x")
    assert info.value.status == 401


def test_holder_refreshes_before_expiry_with_a_short_ttl(sandbox, sandbox_admin):
    sandbox_admin.token_ttl(2)
    settings = live_settings(sandbox)
    skew = [0.0]

    def clock() -> float:
        return time.time() + skew[0]

    # margin capped at half the 2 s life
    holder = TokenHolder(OAuthClient(settings, clock=clock), margin=60, clock=clock)
    client = DreamsClient(settings, token=holder)
    client.check_user()
    first = holder.token
    assert first is not None and first.expires_in == 2
    skew[0] = 1.1  # past expires_at - 1 s for the holder; the sandbox has not expired it
    client.check_user()
    second = holder.token
    assert second.access_token != first.access_token
    calls = sandbox_admin.stats()["calls"]
    assert (calls.get("token/generate"), calls.get("token/refresh")) == (1, 1)
    assert calls.get("chk_user") == 2  # no refusal, no retry: renewed ahead of time


def test_an_expired_token_is_refused_and_the_holder_recovers(sandbox, sandbox_admin):
    settings = live_settings(sandbox)
    token = OAuthClient(settings).generate()
    static = DreamsClient(settings, token=lambda: token.access_token)
    sandbox_admin.clock(3_700)  # the sandbox's clock passes the token's expiry
    with pytest.raises(ProviderError) as info:
        static.balance()
    assert info.value.code == -110

    def shifted() -> float:
        return time.time() + 3_700

    holder = TokenHolder(OAuthClient(settings, clock=shifted), clock=shifted)
    client = DreamsClient(settings, token=holder)
    assert client.balance() == client.balance() == 1_000_000.0
    # one for `token`, one for the holder
    assert sandbox_admin.stats()["calls"]["token/generate"] == 2


def test_holder_falls_back_to_generate_when_its_refresh_token_was_revoked(sandbox, sandbox_admin):
    settings = live_settings(sandbox)
    oauth = OAuthClient(settings)
    holder = TokenHolder(oauth)
    client = DreamsClient(settings, token=holder)
    client.check_user()
    old = holder.token
    oauth.revoke(old.refresh_token)  # in the sandbox this ends the access token too
    client.check_user()  # -110, invalidate, refresh -> invalid_grant, generate, retry
    assert holder.token.access_token != old.access_token
    calls = sandbox_admin.stats()["calls"]
    assert (calls.get("token/generate"), calls.get("token/refresh")) == (2, 1)


def test_oauth_transport_failures_are_mapped(sandbox):
    with running_sandbox() as srv:
        settings = live_settings(srv)
    with pytest.raises(ProviderUnreachable) as info:
        OAuthClient(settings).generate()
    assert_clean(info.value)
