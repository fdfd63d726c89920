"""`DreamsClient`: one method per provider endpoint, over `requests`.

The client makes exactly one HTTP attempt per call. Retrying is the worker's
decision (tenacity there), because only the caller knows whether a send may be
repeated. What the client does own is the classification of every failure:
`_transport_error` is the one place where requests/urllib3 exceptions become
`ProviderUnreachable` (never reached the provider: safe to retry),
`OutcomeUnknown` (sent, no answer: may have landed) or `ServerError`; and
`check_status` is the one place where a non-200 HTTP answer becomes a certain
refusal (`HttpRefused`, `ServerError`, `OAuthError`), because the provider
itself always answers 200.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from functools import partial
from typing import NamedTuple, TypeVar
from urllib.parse import quote_plus, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
)
from urllib3.util.retry import Retry
from urllib3.util.ssl_match_hostname import CertificateError as Urllib3CertificateError

from dreams_sms import __version__
from dreams_sms.config import Settings
from dreams_sms.errors import (
    ConfigError,
    DreamsError,
    GarbledResponse,
    HttpRefused,
    InvalidOption,
    OAuthError,
    OutcomeUnknown,
    ProviderError,
    ProviderUnreachable,
    Refusal,
    ServerError,
    ValidationError,
)
from dreams_sms.provider.redact import REQUEST_SECRET_NAMES, redact, redact_url
from dreams_sms.provider.responses import (
    SenderInfo,
    SendResult,
    garbled,
    parse_balance,
    parse_code,
    parse_send,
    parse_sender_status,
    parse_senders,
    text_of,
)
from dreams_sms.provider.validate import check_options

__all__ = [
    "Answer",
    "CallHook",
    "DreamsClient",
    "SendResult",
    "SenderInfo",
    "check_status",
    "multi_slices",
    "new_session",
    "parse_retry_after",
    "post_form",
    "split_multi",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
#: `on_call(endpoint, seconds, outcome)`; outcome is one of `OUTCOMES`.
CallHook = Callable[[str, float, str], None]
OUTCOMES = (
    "ok",
    "provider_error",
    "unreachable",
    "server_error",
    "unknown",
    "garbled",
    "refused",
    "oauth_error",
    "invalid",
    "error",
)
USER_AGENT = f"dreams-sms/{__version__}"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]", re.ASCII)
_SECONDS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?", re.ASCII)
#: The longest Retry-After we take literally; beyond it a day is as good as forever.
MAX_RETRY_AFTER = 86_400.0
#: Statuses that ask us to come back later, and those that say the body was too big.
_LATER = frozenset({408, 425, 429})
_TOO_LARGE = frozenset({413, 414, 431})
#: The largest sendsms_multi form body we build. The provider documents no limit;
#: PHP's and proxies' common defaults start around 1 MiB, so a quarter of that is safe.
MAX_MULTI_BYTES = 256 * 1024
#: Room left for the other fields of the form (user, secret_key, sender, names).
MULTI_FORM_OVERHEAD = 1024


class Answer(NamedTuple):
    """An HTTP answer read in full: status, body and the headers we act on."""

    status: int
    body: bytes
    headers: Mapping[str, str]


def new_session(url: str = "https://www.dreams.sa") -> requests.Session:
    """A session that never retries on its own: a retried POST could send twice."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=Retry(total=0, read=False, redirect=False))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    # Proxies from the environment are read once here instead of on every
    # request (requests scans os.environ and ~/.netrc per call with trust_env);
    # credentials travel in the form body, so netrc has nothing to add.
    # The proxies are those for `url`, so NO_PROXY (a local sandbox) is honoured.
    session.proxies.update(requests.utils.get_environ_proxies(url))
    session.trust_env = False
    return session


def post_form(
    session: requests.Session,
    url: str,
    *,
    endpoint: str,
    data: Mapping[str, str],
    timeout: tuple[float, float],
    headers: Mapping[str, str] | None = None,
    mask: Iterable[str] = (),
) -> Answer:
    """POST a form and read the whole answer; every transport failure is mapped.

    Redirects are never followed: a redirected POST arrives as a GET without
    its form, so `check_status` turns a 3xx into a refusal naming the Location.
    Values in `mask` (our own secrets) are blanked out of the answer, so a
    provider or proxy that echoes the request cannot leak them into an error.
    """
    try:
        response = session.post(
            url,
            data=dict(data),
            headers=dict(headers or {}),
            timeout=timeout,
            allow_redirects=False,
        )
        with response:
            status, body = response.status_code, response.content
            headers = {
                name: redact(value, mask)
                for name in ("Location", "Retry-After")
                if (value := response.headers.get(name)) is not None
            }
            if "Location" in headers:  # a relative Location, made absolute to be readable
                headers["Location"] = urljoin(url, headers["Location"])
    except (requests.RequestException, HTTPError, http.client.HTTPException, OSError) as exc:
        raise _transport_error(endpoint, exc) from None
    for secret in mask:
        if len(secret) >= 4:
            body = body.replace(secret.encode(), b"***")
    return Answer(status, body, headers)


def _transport_error(endpoint: str, exc: BaseException) -> DreamsError:
    """The one mapping from requests/urllib3 failures into the `DreamsError` tree.

    `requests.ConnectionError` wraps both "could not connect" (urllib3 raises
    MaxRetryError whose reason is NewConnectionError / NameResolutionError /
    ConnectTimeoutError / a TLS or proxy error) and "connection dropped after
    the request went out" (ProtocolError wrapping RemoteDisconnected or
    ConnectionResetError). Only the first is safe to retry, so anything not
    positively identified as a connect-phase failure is `OutcomeUnknown`.
    """
    chain = list(_causes(exc))
    what = _describe(_innermost(chain))
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return ConfigError(f"{endpoint}: invalid provider URL: {what}")
    if isinstance(exc, requests.ConnectTimeout):
        return ProviderUnreachable(endpoint, f"connect timed out: {what}")
    if isinstance(exc, requests.ReadTimeout):
        return OutcomeUnknown(endpoint, f"read timed out, the request may have landed: {what}")
    if isinstance(exc, requests.exceptions.ContentDecodingError) or _not_http(chain):
        return GarbledResponse(endpoint, f"unreadable answer: {what}")
    if isinstance(exc, requests.ConnectionError) and _before_send(chain):
        return ProviderUnreachable(endpoint, f"could not connect: {what}")
    return OutcomeUnknown(endpoint, f"no answer, the request may have landed: {what}")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps (args, `.reason`, cause, context), depth first."""
    seen: set[int] = set()
    stack = [exc]
    while stack and len(seen) < 32:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        inner = [getattr(e, "reason", None), e.__cause__, e.__context__, *e.args]
        stack.extend(x for x in reversed(inner) if isinstance(x, BaseException))


_POST_SEND = (ProtocolError, http.client.HTTPException, ConnectionResetError, BrokenPipeError)
# TLS errors are wrapped alike whether they happen in the handshake or while reading
# the answer (an SSLEOFError after the request went out), so only certificate
# failures, which can only happen in the handshake, count as "never sent".
_PRE_SEND = (
    NewConnectionError,  # includes NameResolutionError
    ConnectTimeoutError,
    ProxyError,  # urllib3 raises it only before the tunnel to the proxy is up
    socket.gaierror,
    ConnectionRefusedError,
    ssl.SSLCertVerificationError,
    Urllib3CertificateError,
)


def _before_send(chain: list[BaseException]) -> bool:
    """True only when the failure certainly happened before the request left."""
    if any(isinstance(e, _POST_SEND) for e in chain):
        return False
    return any(isinstance(e, _PRE_SEND) for e in chain)


def _not_http(chain: list[BaseException]) -> bool:
    """An answer came, but not an HTTP one (RemoteDisconnected is a BadStatusLine too)."""
    return any(
        isinstance(e, http.client.BadStatusLine) and not isinstance(e, ConnectionError)
        for e in chain
    )


def _innermost(chain: list[BaseException]) -> BaseException:
    """The most telling link: the first one that is not a requests/urllib3 wrapper."""
    for e in chain:
        if not isinstance(e, requests.RequestException | MaxRetryError):
            return e
    return chain[0]


def _describe(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")[:300]


class DreamsClient:
    """The provider's endpoints as methods: typed results, `DreamsError` failures."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        token: Callable[[], str] | None = None,
        on_call: CallHook | None = None,
    ):
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.timeout = (settings.connect_timeout, settings.read_timeout)
        self._owns_session = session is None
        self._session = session if session is not None else new_session(self.base_url)
        self._token = token
        self._on_call = on_call

    def __repr__(self) -> str:
        return f"DreamsClient(base_url={redact_url(self.base_url)!r}, user={self.settings.user!r})"

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> DreamsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- account ---------------------------------------------------------

    def register(self, user: str, password: str, name: str, mobile: str, email: str) -> None:
        """Create an account; Register takes no secret_key (there is none yet)."""
        form = {"user": user, "password": password, "name": name, "mobile": mobile, "email": email}
        self._call("Register", form, parse_code, auth=False)

    def activate(self, code: str) -> None:
        self._call("activate", {"code": code}, parse_code)

    def check_user(self) -> None:
        """Raises unless the credentials name an active, unblocked account."""
        self._call("chk_user", {}, parse_code)

    def balance(self) -> float:
        return self._call("chk_balance", {}, parse_balance)

    # -- senders ---------------------------------------------------------

    def new_sender(self, text: str) -> None:
        self._call("newsender", {"sendertext": text}, parse_code)

    def sender_status(self, text: str) -> str:
        """Returns "Active" when usable; inactive, rejected or unknown senders raise."""
        return self._call("senderstatus", {"sendertext": text}, parse_sender_status)

    def senders(self) -> list[SenderInfo]:
        try:
            return self._call("usersender", {}, parse_senders)
        except ProviderError as exc:
            if exc.code == -117:  # "no sender for this user" is an empty list, not a failure
                return []
            raise

    # -- sending ---------------------------------------------------------

    def send(
        self,
        to: str,
        message: str,
        sender: str,
        *,
        is_calander: int | str | None = None,
        calander_date: str | None = None,
        calander_time: str | None = None,
        reminder: int | str | None = None,
        reminder_text: str | None = None,
        location_url: str | None = None,
    ) -> SendResult:
        """One message to one number (or a comma list, as the provider allows).

        The option names keep the provider's spelling. They are checked here,
        before any request, so a typo never costs a (possibly billed) call.
        Form values are accepted too (`is_calander="1"`, `reminder="15"`): the
        drain passes a queued job's options as `check_options` stored them.
        """
        options = check_options({
            "is_calander": is_calander,
            "calander_date": calander_date,
            "calander_time": calander_time,
            "reminder": reminder,
            "reminder_text": reminder_text,
            "location_url": location_url,
        })
        form = {"to": to, "message": message, "sender": sender, **options}
        recipients = [n.strip() for n in to.split(",")]
        return self._call("sendsms", form, partial(parse_send, recipients=recipients))

    def send_multi(self, sender: str, items: Sequence[tuple[str, str]]) -> SendResult:
        """Several (number, text) pairs in one call, `to` shaped per `multi_format`.

        The result's `confirmed` is aligned with `items`: see `SendResult`.
        """
        form = {"sender": sender, "to": multi_payload(items, self.settings.multi_format)}
        recipients = [str(number) for number, _ in items]
        return self._call("sendsms_multi", form, partial(parse_send, recipients=recipients))

    def ready(self) -> None:
        """Have a valid OAuth token at hand before a send (no-op without OAuth).

        The drain calls this before it leases jobs for a call, so a slow token
        renewal never happens while a batch is marked as on the wire.
        """
        if self._token is not None:
            self._token()

    # -- plumbing --------------------------------------------------------

    def _call(
        self,
        endpoint: str,
        fields: Mapping[str, str],
        parse: Callable[[str, bytes], T],
        *,
        auth: bool = True,
    ) -> T:
        started = time.monotonic()
        outcome = "error"
        try:
            try:
                result = self._request(endpoint, fields, parse, auth=auth)
            except (ProviderError, OAuthError) as exc:
                # A refused token means nothing was accepted: one retry with a new one is safe.
                if not (auth and _token_refused(exc) and self._drop_token()):
                    raise
                result = self._request(endpoint, fields, parse, auth=auth)
            outcome = "ok"
            return result
        except DreamsError as exc:
            outcome = outcome_of(exc)
            raise
        finally:
            self._report(endpoint, time.monotonic() - started, outcome)

    def _request(
        self,
        endpoint: str,
        fields: Mapping[str, str],
        parse: Callable[[str, bytes], T],
        *,
        auth: bool,
    ) -> T:
        form: dict[str, str] = {}
        headers: dict[str, str] = {}
        secrets: list[str] = []
        if auth:
            form["user"] = self.settings.user
            if self.settings.secret_key:
                form["secret_key"] = self.settings.secret_key.reveal()
            if self._token is not None:
                token = self._token()
                headers["Authorization"] = f"Bearer {token}"
                secrets.append(token)
        form.update(fields)
        secrets += [v for k, v in form.items() if k in REQUEST_SECRET_NAMES]
        answer = post_form(
            self._session,
            f"{self.base_url}/{endpoint}",
            endpoint=endpoint,
            data=form,
            timeout=self.timeout,
            headers=headers,
            mask=secrets,
        )
        check_status(endpoint, answer.status, answer.body, answer.headers)
        return parse(endpoint, answer.body)

    def _drop_token(self) -> bool:
        """Tell a token holder (see `oauth.TokenHolder.invalidate`) its token was refused."""
        invalidate = getattr(self._token, "invalidate", None)
        if not callable(invalidate):
            return False
        invalidate()
        return True

    def _report(self, endpoint: str, seconds: float, outcome: str) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(endpoint, seconds, outcome)
        except Exception:  # a broken metrics hook must not turn a landed send into an error
            log.exception("on_call hook failed for %s", endpoint)


def _token_refused(exc: ProviderError | OAuthError) -> bool:
    """-110 (the sandbox and, we assume, the provider) or an OAuth-style HTTP 401."""
    if isinstance(exc, ProviderError):
        return exc.code == -110
    return exc.status == 401


def check_status(
    endpoint: str, status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> None:
    """Classify a non-200 answer. The provider reports its own errors with HTTP 200,
    so any other status comes from the web server or a proxy and says whether
    the call was processed:

    - 3xx, 4xx: refused before anything was accepted (`HttpRefused`; a 400/401/403
      with an OAuth JSON body is an `OAuthError`, so a refused token is renewed);
    - 5xx: `ServerError`, certain and retryable;
    - other 2xx and anything stranger: processed but unreadable, `GarbledResponse`.
    """
    if status == 200:
        return
    text = text_of(body)
    headers = headers or {}
    if 500 <= status < 600:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        raise ServerError(endpoint, f"HTTP {status}", status=status, retry_after=retry_after)
    if status in (400, 401, 403):
        error = _oauth_error(text)
        if error is not None:  # a refused bearer token
            raise OAuthError(endpoint, status, *error)
    refused = http_refusal(endpoint, status, headers)
    if refused is not None:
        raise refused
    raise garbled(endpoint, f"unexpected HTTP {status}", text)


def http_refusal(
    endpoint: str, status: int, headers: Mapping[str, str] | None = None
) -> HttpRefused | None:
    """The certain refusal a 3xx or 4xx status means, None for any other status."""
    headers = headers or {}
    if 300 <= status < 400:
        location = headers.get("Location")
        where = redact_url(location)[:300] if location else None
        detail = f"HTTP {status} redirect"
        if where:
            detail += f" to {where}"
        detail += " not followed (a POST must not be redirected): fix the provider URL"
        return HttpRefused(endpoint, detail, status, Refusal.CONFIGURATION, location=where)
    if not 400 <= status < 500:
        return None
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if status in _LATER:
        kind = Refusal.RETRYABLE
        detail = f"HTTP {status}: asked to come back later"
        if retry_after is not None:
            detail += f" (Retry-After {retry_after:g} s)"
    elif status in _TOO_LARGE:
        kind, detail = Refusal.TOO_LARGE, f"HTTP {status}: the request is too large"
    else:
        kind = Refusal.CONFIGURATION
        detail = f"HTTP {status} {_reason(status)}: check the provider URL, credentials and IP"
    return HttpRefused(endpoint, detail, status, kind, retry_after=retry_after)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date.

    None when absent or unreadable; never negative, never more than a day.
    """
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _reason(status: int) -> str:
    return http.client.responses.get(status, "")


def _oauth_error(text: str) -> tuple[str, str] | None:
    """(`error`, `error_description`) from an OAuth-style JSON body, if it is one."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        return None
    description = data.get("error_description")
    return data["error"][:100], redact(description)[:300] if isinstance(description, str) else ""


def outcome_of(exc: DreamsError) -> str:
    """A short, fixed label for metrics."""
    if isinstance(exc, ProviderError):
        return "provider_error"
    if isinstance(exc, GarbledResponse):
        return "garbled"
    if isinstance(exc, ProviderUnreachable):
        return "unreachable"
    if isinstance(exc, ServerError):
        return "server_error"
    if isinstance(exc, HttpRefused):
        return "refused"
    if isinstance(exc, OutcomeUnknown):
        return "unknown"
    if isinstance(exc, OAuthError):
        return "oauth_error"
    if isinstance(exc, ValidationError):
        return "invalid"
    return "error"


def multi_payload(items: Sequence[tuple[str, str]], shape: str = "list") -> str:
    """The JSON `to` of sendsms_multi.

    "list" is the provider's reference, `[[{"to": n, "message": m}], ...]`;
    "object" is `{n: m, ...}` as the Laravel package sends it.
    """
    pairs = [(str(number), str(text)) for number, text in items]
    if shape == "list":
        value: object = [[{"to": n, "message": m}] for n, m in pairs]
    elif shape == "object":
        value = dict(pairs)
        if len(value) != len(pairs):
            raise InvalidOption("the object format cannot carry a number twice", field="to")
    else:
        raise InvalidOption(f"unknown multi_format {shape!r}", field="multi_format")
    return json.dumps(value, ensure_ascii=False)


def multi_slices(
    items: Sequence[tuple[str, str]],
    *,
    max_count: int,
    max_bytes: int = MAX_MULTI_BYTES,
    shape: str = "list",
    overhead: int = MULTI_FORM_OVERHEAD,
) -> list[slice]:
    """Consecutive slices of `items`, each one sendsms_multi call: at most
    `max_count` pairs and at most `max_bytes` of url-encoded form body.

    The size is exact for the `to` field that `multi_payload(items[s], shape)`
    builds (the form is sent url-encoded, so an Arabic character costs 6 bytes
    and an emoji 12); `overhead` is reserved for the other fields. A pair too
    big for any call on its own gets a slice of its own rather than being
    dropped: the provider then answers for it (413 is `HttpRefused`, too_large).
    Order is kept and every item is in exactly one slice.
    """
    if max_count < 1:
        raise ValueError("max_count must be at least 1")
    if shape not in ("list", "object"):
        raise InvalidOption(f"unknown multi_format {shape!r}", field="multi_format")
    budget = max_bytes - overhead - len("to=") - 2 * len(quote_plus("["))  # brackets
    separator = len(quote_plus(", "))
    # The common case costs no encoding: a character url-encodes to at most 12
    # bytes (an emoji; a JSON escape such as \u0001 to 8), a pair's JSON frame to
    # less than 100; a batch under that bound fits as it is.
    if len(items) <= max_count and sum(
            12 * (len(str(n)) + len(str(t))) + 100 + separator for n, t in items) <= budget:
        return [slice(0, len(items))] if items else []
    out: list[slice] = []
    start, used = 0, 0
    for i, (number, text) in enumerate(items):
        size = _encoded_item(str(number), str(text), shape)
        count = i - start
        if count and (count >= max_count or used + separator + size > budget):
            out.append(slice(start, i))
            start, used = i, 0
            count = 0
        used += size + (separator if count else 0)
    if start < len(items):
        out.append(slice(start, len(items)))
    return out


def split_multi(
    items: Sequence[tuple[str, str]],
    *,
    max_count: int,
    max_bytes: int = MAX_MULTI_BYTES,
    shape: str = "list",
    overhead: int = MULTI_FORM_OVERHEAD,
) -> list[list[tuple[str, str]]]:
    """`items` cut into sendsms_multi batches; see `multi_slices` for the limits."""
    slices = multi_slices(
        items, max_count=max_count, max_bytes=max_bytes, shape=shape, overhead=overhead
    )
    return [list(items[s]) for s in slices]


def _encoded_item(number: str, text: str, shape: str) -> int:
    """Url-encoded length of one pair as `multi_payload` writes it, without separators."""
    if shape == "list":
        piece = json.dumps([{"to": number, "message": text}], ensure_ascii=False)
    else:
        piece = f"{json.dumps(number, ensure_ascii=False)}: {json.dumps(text, ensure_ascii=False)}"
    return len(quote_plus(piece))


def _is_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_web_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in value
