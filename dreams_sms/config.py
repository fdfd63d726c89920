"""Settings, read once from the environment.

This module is the only reader of `os.environ` in the package. Everything is
parsed and checked up front so that a bad value stops the process at start
with one line naming the variable, not halfway through a campaign.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dreams_sms.errors import ConfigError

MultiFormat = Literal["list", "object"]
OnUnknown = Literal["hold", "reconcile"]

#: Secrets read from the environment as they are (no `_FILE` form): variable -> field.
SECRETS = {"DREAMS_FLOWER_AUTH": "flower_auth", "DREAMS_TOKEN": "token",
           "DREAMS_REFRESH_TOKEN": "refresh_token", "REDIS_PASSWORD": "redis_password",
           "REDIS_SENTINEL_PASSWORD": "sentinel_password"}

REAL_BASE_URL = "https://www.dreams.sa/index.php/api"
REAL_OAUTH_URL = "https://www.dreams.sa/token"
#: The provider's domain: reconciling against anything there would resend real messages.
REAL_DOMAIN = "dreams.sa"
#: Lower bounds, each with the reason it exists (shown when a value is refused).
MIN_KEY_WINDOW = 60  # an idempotency key must outlive a retry or a redelivery
MIN_STATUS_TTL = 86_400  # a status must outlive a day of retries and deferrals


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """Where a Sentinel-managed Redis is: `sentinel://h1:26379,h2:26379/master/db`.

    One URL names every sentinel and the master's service name, so the data
    plane (redis-py), the broker (kombu) and beat (redbeat) are all told the
    same thing; passwords come from their own secret variables, never the URL.
    """

    hosts: tuple[tuple[str, int], ...]
    master: str
    db: int = 0

    @classmethod
    def parse(cls, url: str) -> SentinelTarget:
        rest = url.strip().removeprefix("sentinel://")
        if "@" in rest:
            raise ValueError("keeps no password: set REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD")
        hostlist, _, path = rest.partition("/")
        parts = [p for p in path.split("/") if p]
        if not parts or len(parts) > 2:
            raise ValueError("must be sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]")
        hosts = []
        for item in filter(None, (h.strip() for h in hostlist.split(","))):
            host, sep, port = item.rpartition(":")
            if not sep:
                host, port = item, "26379"
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{item!r} is not HOST:PORT")
            hosts.append((host.strip("[]"), int(port)))
        if not hosts:
            raise ValueError("names no sentinel")
        if len(parts) == 2 and not parts[1].isdigit():
            raise ValueError(f"database {parts[1]!r} is not a number")
        return cls(tuple(hosts), parts[0], int(parts[1]) if len(parts) == 2 else 0)

    def kombu_url(self, password: str = "") -> str:
        """kombu's form: one `sentinel://` per node, `;`-separated, the db at the end.

        The Redis password goes in every node's URL: kombu re-reads the URL when
        it moves to the next sentinel and would drop one given apart (celery
        masks it wherever it prints the URL)."""
        auth = f":{quote(password, safe='')}@" if password else ""
        return ";".join(f"sentinel://{auth}{h}:{p}/{self.db}" for h, p in self.hosts)


class Secret:
    """A string that never shows itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is not serialisable; read it from the environment")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, typed. Build with `Settings.from_env()`."""

    user: str = ""
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    client_id: str = ""
    client_secret: Secret = field(default_factory=lambda: Secret(""))
    base_url: str = REAL_BASE_URL
    oauth_url: str = REAL_OAUTH_URL
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    timezone: str = "Asia/Riyadh"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    batch_size: int = 100
    batch_wait: float = 0.2
    daily_limit: int = 0  # 0: no limit unless one is set per sender
    daily_limits: Mapping[str, int] = field(default_factory=dict)
    rate_per_second: float = 0.0  # 0: no per-second cap
    balance_interval: float = 60.0
    multi_format: MultiFormat = "list"  # "list" (the reference) or "object" ({number: text})
    prefix: str = "dreams"
    key_window: int = 86_400
    max_age: float = 86_400.0
    retry_attempts: int = 5
    retry_max_wait: float = 8.0
    retry_delay: float = 30.0
    claim_idle: float = 90.0
    on_unknown: OnUnknown = "hold"  # "hold" for review, or "reconcile" against the sandbox
    reconcile_url: str = ""
    sender_parallelism: int = 4
    status_ttl: int = 7 * 86_400
    max_text_length: int = 1_530  # 10 concatenated GSM-7 segments
    max_segments: int = 10  # the cap that also holds for UCS-2 (Arabic, emoji) texts
    test_clock: bool = False
    allow_eviction: bool = False
    # Replicas that must confirm a lease (and an enqueue) before it counts;
    # None: 1 with a Sentinel URL, 0 otherwise.
    replica_acks: int | None = None
    replica_timeout: float = 0.5
    # The HTTP API (`dreams-sms serve`): where it listens, what it takes, how fast.
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_max_body: int = 256 * 1024 * 1024  # bytes of one campaign upload (streamed)
    api_max_request: int = 64 * 1024  # bytes of any other request body
    api_rate: float = 50.0  # requests per second per API key (0: no limit)
    api_burst: int = 100  # requests one key may make at once above the rate
    # Secrets some commands need; read here like every other variable.
    flower_auth: Secret = field(default_factory=lambda: Secret(""))  # user:password
    token: Secret = field(default_factory=lambda: Secret(""))  # `token revoke`
    refresh_token: Secret = field(default_factory=lambda: Secret(""))  # `token refresh`
    redis_password: Secret = field(default_factory=lambda: Secret(""))  # Sentinel mode
    sentinel_password: Secret = field(default_factory=lambda: Secret(""))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(**_parse(env))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def limit_for(self, sender: str) -> int:
        return self.daily_limits.get(sender, self.daily_limit)

    def with_(self, **changes: Any) -> Settings:
        # Any, as `dataclasses.replace` takes it; it refuses unknown names at run time.
        return replace(self, **changes)

    def require_credentials(self) -> None:
        """Fail clearly when a command needs the account and none is set."""
        if not self.user:
            raise ConfigError("DREAMS_USER is not set: the provider account's username")
        if not self.secret_key:
            raise ConfigError(
                "DREAMS_SECRET_KEY (or DREAMS_SECRET_KEY_FILE) is not set: the account's API key"
            )

    def require_oauth(self) -> None:
        if not self.client_id:
            raise ConfigError("DREAMS_CLIENT_ID is not set: needed for OAuth tokens")
        if not self.client_secret:
            raise ConfigError("DREAMS_CLIENT_SECRET is not set: needed for OAuth tokens")

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def sentinel(self) -> SentinelTarget | None:
        """The Sentinel set `REDIS_URL` names, or None for a single Redis."""
        if not self.redis_url.startswith("sentinel://"):
            return None
        return SentinelTarget.parse(self.redis_url)

    @property
    def replicas_to_confirm(self) -> int:
        """How many replicas must hold a lease before its call goes out."""
        if self.replica_acks is not None:
            return self.replica_acks
        return 1 if self.sentinel else 0


# Environment variable -> (field, parser). The table doubles as documentation.
def _str(v: str) -> str:
    return v.strip()


def _float(v: str) -> float:
    """A finite number: float() also reads "nan" and "inf", which no setting means."""
    x = float(v)
    if not math.isfinite(x):
        raise ValueError("must be a finite number")
    return x


def _pos_float(v: str) -> float:
    x = _float(v)
    if x < 0:
        raise ValueError("must not be negative")
    return x


def _above_zero(v: str) -> float:
    x = _float(v)
    if x <= 0:
        raise ValueError("must be greater than 0")
    return x


def _int_at_least(low: int, why: str) -> Callable[[str], int]:
    def parse(v: str) -> int:
        x = int(v)
        if x < low:
            raise ValueError(f"must be at least {low} ({why})")
        return x

    return parse


def _segments(v: str) -> int:
    x = int(v)
    if not 1 <= x <= 255:  # a concatenated SMS has at most 255 parts
        raise ValueError("must be between 1 and 255")
    return x


def _pos_int(v: str) -> int:
    x = int(v)
    if x < 0:
        raise ValueError("must not be negative")
    return x


def _batch_size(v: str) -> int:
    x = int(v)
    if not 1 <= x <= 1000:
        raise ValueError("must be between 1 and 1000")
    return x


def _url(v: str) -> str:
    v = v.strip().rstrip("/")
    if not v.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return v


def _redis_url(v: str) -> str:
    v = v.strip()
    if not v.startswith(("redis://", "rediss://", "unix://", "sentinel://")):
        raise ValueError("must start with redis://, rediss://, unix:// or sentinel://")
    if v.startswith("sentinel://"):
        SentinelTarget.parse(v)
    return v


def _timezone(v: str) -> str:
    try:
        ZoneInfo(v.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("is not a known IANA time zone") from exc
    return v.strip()


def _limits(v: str) -> dict[str, int]:
    """`SENDER=5000,OTHER=100`."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in v.split(","))):
        name, sep, num = part.rpartition("=")
        if not sep or not name.strip():
            raise ValueError(f"{part!r} is not SENDER=NUMBER")
        out[name.strip()] = _pos_int(num)
    return out


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(v: str) -> str:
        v = v.strip().lower()
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return v

    return parse


def _bool(v: str) -> bool:
    v = v.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _port(v: str) -> int:
    x = int(v)
    if not 1 <= x <= 65535:
        raise ValueError("must be a TCP port, 1-65535")
    return x


def _at_least_one(v: str) -> int:
    x = int(v)
    if x < 1:
        raise ValueError("must be at least 1")
    return x


def _prefix(v: str) -> str:
    v = v.strip()
    if not v or not all(c.isalnum() or c in "_-." for c in v):
        raise ValueError("must be letters, digits, '_', '-' or '.'")
    return v


ENV: dict[str, tuple[str, Callable[[str], object]]] = {
    "DREAMS_USER": ("user", _str),
    "DREAMS_CLIENT_ID": ("client_id", _str),
    "DREAMS_BASE_URL": ("base_url", _url),
    "DREAMS_OAUTH_URL": ("oauth_url", _url),
    "REDIS_URL": ("redis_url", _redis_url),
    "DREAMS_TIMEZONE": ("timezone", _timezone),
    "DREAMS_CONNECT_TIMEOUT": ("connect_timeout", _pos_float),
    "DREAMS_READ_TIMEOUT": ("read_timeout", _pos_float),
    "DREAMS_BATCH_SIZE": ("batch_size", _batch_size),
    "DREAMS_BATCH_WAIT": ("batch_wait", _pos_float),
    "DREAMS_DAILY_LIMIT": ("daily_limit", _pos_int),
    "DREAMS_DAILY_LIMITS": ("daily_limits", _limits),
    "DREAMS_RATE_PER_SECOND": ("rate_per_second", _pos_float),
    "DREAMS_BALANCE_INTERVAL": ("balance_interval", _pos_float),
    "DREAMS_MULTI_FORMAT": ("multi_format", _choice("list", "object")),
    "DREAMS_PREFIX": ("prefix", _prefix),
    "DREAMS_KEY_WINDOW": (
        "key_window", _int_at_least(MIN_KEY_WINDOW, "a key must outlive a retry")),
    "DREAMS_MAX_AGE": ("max_age", _pos_float),
    "DREAMS_RETRY_ATTEMPTS": ("retry_attempts", _pos_int),
    "DREAMS_RETRY_MAX_WAIT": ("retry_max_wait", _pos_float),
    "DREAMS_RETRY_DELAY": ("retry_delay", _above_zero),
    "DREAMS_CLAIM_IDLE": ("claim_idle", _pos_float),
    "DREAMS_ON_UNKNOWN": ("on_unknown", _choice("hold", "reconcile")),
    "DREAMS_RECONCILE_URL": ("reconcile_url", _url),
    "DREAMS_SENDER_PARALLELISM": ("sender_parallelism", _pos_int),
    "DREAMS_STATUS_TTL": (
        "status_ttl", _int_at_least(MIN_STATUS_TTL, "a day, so a status outlives its retries")),
    "DREAMS_MAX_TEXT_LENGTH": ("max_text_length", _pos_int),
    "DREAMS_MAX_SEGMENTS": ("max_segments", _segments),
    "DREAMS_TEST_CLOCK": ("test_clock", _bool),
    "DREAMS_ALLOW_EVICTION": ("allow_eviction", _bool),
    "DREAMS_REPLICA_ACKS": ("replica_acks", _pos_int),
    "DREAMS_REPLICA_TIMEOUT": ("replica_timeout", _above_zero),
    "DREAMS_API_HOST": ("api_host", _str),
    "DREAMS_API_PORT": ("api_port", _port),
    "DREAMS_API_MAX_BODY": ("api_max_body", _at_least_one),
    "DREAMS_API_MAX_REQUEST": ("api_max_request", _at_least_one),
    "DREAMS_API_RATE": ("api_rate", _pos_float),
    "DREAMS_API_BURST": ("api_burst", _at_least_one),
}


def _parse(env: Mapping[str, str]) -> dict[str, Any]:
    # Any: field name -> value of that field's type, as the ENV table's parser
    # (or Secret) made it; Settings(**values) takes them as they are.
    values: dict[str, Any] = {}
    for var, (name, parse) in ENV.items():
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{var}={_shown(raw)} is invalid: {exc}") from None
    values["secret_key"] = Secret(_secret(env, "DREAMS_SECRET_KEY"))
    values["client_secret"] = Secret(_secret(env, "DREAMS_CLIENT_SECRET"))
    for var, name in SECRETS.items():
        values[name] = Secret(env.get(var, "").strip())
    if values.get("on_unknown") == "reconcile":
        _check_reconcile(str(values.get("base_url", REAL_BASE_URL)), values.get("reconcile_url"))
    _check_claim_idle(values)
    return values


def _check_reconcile(base_url: str, reconcile_url: object) -> None:
    """Reconciling asks the sandbox what it accepted; against anything else it
    would call held messages "not sent" and send them again. So it needs a
    reconcile URL on the very origin the messages went to, never the real API."""
    if not reconcile_url:
        raise ConfigError("DREAMS_ON_UNKNOWN=reconcile needs DREAMS_RECONCILE_URL")
    if _is_real(base_url):
        raise ConfigError(
            f"DREAMS_ON_UNKNOWN=reconcile is refused with DREAMS_BASE_URL={_shown(base_url)}: "
            "the real provider cannot be reconciled; use DREAMS_ON_UNKNOWN=hold"
        )
    if _origin(str(reconcile_url)) != _origin(base_url):
        raise ConfigError(
            f"DREAMS_RECONCILE_URL={_shown(str(reconcile_url))} is invalid: DREAMS_ON_UNKNOWN="
            f"reconcile needs the same scheme, host and port as DREAMS_BASE_URL"
        )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _is_real(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    real = urlsplit(REAL_BASE_URL).hostname or REAL_DOMAIN
    return host in (real, REAL_DOMAIN) or host.endswith("." + REAL_DOMAIN)


def min_claim_idle(connect_timeout: float, read_timeout: float) -> float:
    """The shortest takeover timer that outlasts one provider request.

    A worker renews its leases every `claim_idle / 4` seconds through every
    wait (backoff, the per-second cap, token renewal), and releases them
    before a backoff sleep, so only one request runs under a lease that
    nobody renews when things go wrong. The timer must outlast it with a
    margin, or a slow answer would make a live worker's batch look abandoned.
    """
    return 1.25 * (connect_timeout + read_timeout) + 1.0


def _check_claim_idle(values: dict[str, object]) -> None:
    def get(name: str) -> float:
        default = next(f.default for f in fields(Settings) if f.name == name)
        return float(values.get(name, default))  # type: ignore[arg-type]

    need = min_claim_idle(get("connect_timeout"), get("read_timeout"))
    if get("claim_idle") < need:
        raise ConfigError(
            f"DREAMS_CLAIM_IDLE={get('claim_idle'):g} is too short: a provider request may take "
            f"DREAMS_CONNECT_TIMEOUT + DREAMS_READ_TIMEOUT = "
            f"{get('connect_timeout') + get('read_timeout'):g}s; set it to at least {need:g}")


def _secret(env: Mapping[str, str], var: str) -> str:
    """A secret from VAR, or from the file named by VAR_FILE (Docker secrets)."""
    direct = env.get(var, "").strip()
    path = env.get(f"{var}_FILE", "").strip()
    if direct and path:
        raise ConfigError(f"set {var} or {var}_FILE, not both")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{var}_FILE={path} cannot be read: {exc.strerror}") from None
    return direct


def _shown(raw: str) -> str:
    """A refused value as an error may quote it: a URL's password masked, long ones cut."""
    raw = _URL_PASSWORD.sub(r"\1***@", raw)
    return raw if len(raw) <= 60 else raw[:57] + "..."


_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


def env_table(environ: Mapping[str, str] | None = None) -> list[tuple[str, str, str, str]]:
    """(variable, value in effect, default, meaning) rows for `dreams-sms config`.

    Each variable is parsed on its own, so one bad value shows as INVALID in
    its row instead of hiding the whole table. Secrets show as `***`; a Redis
    URL's password is masked.
    """
    from dreams_sms.provider.redact import redact_url

    env = os.environ if environ is None else environ
    defaults = Settings()
    rows: list[tuple[str, str, str, str]] = []
    for var, (name, parse) in ENV.items():
        raw = env.get(var)
        default = getattr(defaults, name)
        if raw is None or raw.strip() == "":
            value = _display(default)
        else:
            try:
                value = _display(parse(raw))
            except ValueError as exc:
                value = f"INVALID ({exc})"
        if var == "REDIS_URL":
            value, default = redact_url(value), redact_url(default)
        rows.append((var, value, _display(default), MEANINGS.get(var, "")))
    for var, after in (("DREAMS_SECRET_KEY", "DREAMS_USER"),
                       ("DREAMS_CLIENT_SECRET", "DREAMS_CLIENT_ID")):
        source = ("set in " + var if env.get(var, "").strip()
                  else "read from " + var + "_FILE" if env.get(f"{var}_FILE", "").strip()
                  else "")
        at = 1 + next(i for i, row in enumerate(rows) if row[0] == after)
        rows.insert(at, (f"{var}[_FILE]", f"*** ({source})" if source else "", "",
                         MEANINGS[f"{var}[_FILE]"]))
    auth = env.get("DREAMS_FLOWER_AUTH", "").strip()
    rows.append(("DREAMS_FLOWER_AUTH", auth.partition(":")[0] + ":***" if auth else "", "",
                 MEANINGS["DREAMS_FLOWER_AUTH"]))
    for var in ("REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD"):
        rows.append((var, "***" if env.get(var, "").strip() else "", "", MEANINGS[var]))
    return rows


def _display(value: object) -> str:
    """A value as one would write it in the environment."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, Secret):
        return "***" if value else ""
    return str(value)


#: What each variable means, for `dreams-sms config` (the README's table says the same).
MEANINGS: dict[str, str] = {
    "DREAMS_USER": "the provider account's username",
    "DREAMS_SECRET_KEY[_FILE]": "API secret key (or a file holding it, for Docker secrets)",
    "DREAMS_CLIENT_ID": "OAuth client id; with the secret, workers share one token via Redis",
    "DREAMS_CLIENT_SECRET[_FILE]": "OAuth client secret (or a file holding it)",
    "DREAMS_BASE_URL": "provider API base (the sandbox: http://127.0.0.1:8025/index.php/api)",
    "DREAMS_OAUTH_URL": "OAuth base: /generate, /refresh, /revoke (sandbox: .../token)",
    "REDIS_URL": "Redis for streams, state and the Celery broker",
    "DREAMS_TIMEZONE": "the day for daily limits (IANA time zone)",
    "DREAMS_CONNECT_TIMEOUT": "seconds to connect to the provider",
    "DREAMS_READ_TIMEOUT": "seconds to wait for the provider's answer",
    "DREAMS_BATCH_SIZE": "recipients per sendsms_multi call (1-1000)",
    "DREAMS_BATCH_WAIT": "seconds to wait for a fuller batch",
    "DREAMS_DAILY_LIMIT": "default per-sender daily limit (0: none)",
    "DREAMS_DAILY_LIMITS": "per sender: Promo=5000,Alerts=20000",
    "DREAMS_RATE_PER_SECOND": "optional per-second cap (GCRA; 0: none)",
    "DREAMS_BALANCE_INTERVAL": "seconds between balance checks",
    "DREAMS_MULTI_FORMAT": "sendsms_multi `to` shape: list (the reference) or object",
    "DREAMS_PREFIX": "Redis key prefix",
    "DREAMS_KEY_WINDOW": "idempotency window for key= (s)",
    "DREAMS_MAX_AGE": "a job retried past this age (s) fails with its last code",
    "DREAMS_RETRY_ATTEMPTS": "attempts per batch for retryable errors",
    "DREAMS_RETRY_MAX_WAIT": "ceiling of the backoff between attempts (s)",
    "DREAMS_RETRY_DELAY": "seconds before exhausted jobs return to the queue",
    "DREAMS_CLAIM_IDLE": "seconds before a silent consumer's jobs are taken over",
    "DREAMS_ON_UNKNOWN": "hold ambiguous sends for review, or reconcile (sandbox)",
    "DREAMS_RECONCILE_URL": "the sandbox to ask when DREAMS_ON_UNKNOWN=reconcile",
    "DREAMS_SENDER_PARALLELISM": "drain chains per sender at once",
    "DREAMS_STATUS_TTL": "how long statuses are kept (s)",
    "DREAMS_MAX_TEXT_LENGTH": "characters per message",
    "DREAMS_MAX_SEGMENTS": "SMS segments per message (10: what one text may cost)",
    "DREAMS_ALLOW_EVICTION": "run on a Redis whose maxmemory-policy may evict keys (unsafe)",
    "DREAMS_REPLICA_ACKS": "replicas that must hold a lease before its call (auto: 1 w/ Sentinel)",
    "DREAMS_REPLICA_TIMEOUT": "seconds to wait for that confirmation (WAIT)",
    "DREAMS_TEST_CLOCK": "tests only: honour a clock offset kept in Redis",
    "DREAMS_FLOWER_AUTH": "user:password for Flower's basic auth",
    "REDIS_PASSWORD": "password of the Redis nodes behind a sentinel:// URL",
    "REDIS_SENTINEL_PASSWORD": "password of the sentinels themselves",
    "DREAMS_API_HOST": "address `dreams-sms serve` listens on",
    "DREAMS_API_PORT": "port `dreams-sms serve` listens on",
    "DREAMS_API_MAX_BODY": "bytes of one campaign upload (streamed; larger: 413)",
    "DREAMS_API_MAX_REQUEST": "bytes of any other request body (larger: 413)",
    "DREAMS_API_RATE": "requests per second per API key, in Redis for every replica (0: none)",
    "DREAMS_API_BURST": "requests one API key may make at once above the rate",
}
