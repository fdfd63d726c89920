"""One exception tree for everything that can go wrong.

Every error the package raises is a `DreamsError`. Provider answers carry the
code, the endpoint and what that code means there; network trouble maps into
the same tree in one place (`client._transport_error`). Secrets never enter an
exception's text.
"""

from __future__ import annotations

from enum import StrEnum

from dreams_sms.provider.codes import Code, Kind, lookup


class DreamsError(Exception):
    """Root of every error raised by dreams_sms."""


class ConfigError(DreamsError):
    """A setting is missing or invalid; the message names the variable."""


class ValidationError(DreamsError, ValueError):
    """Input refused before anything was queued or sent."""

    def __init__(self, message: str, *, field: str | None = None, index: int | None = None):
        super().__init__(message)
        self.field = field
        self.index = index


class InvalidNumber(ValidationError):
    """A recipient number that cannot be a Saudi mobile number."""


class InvalidText(ValidationError):
    """Empty, overlong or undecodable message text."""


class InvalidOption(ValidationError):
    """An unknown or inconsistent sendsms option."""


class ProviderError(DreamsError):
    """The provider answered with a negative code.

    The code alone is ambiguous; `.endpoint` says which table it came from and
    `.description` what it means there.
    """

    def __init__(self, endpoint: str, code: int, body: str | None = None):
        self.endpoint = endpoint
        self.info: Code = lookup(endpoint, code)
        self.code = code
        self.description = self.info.description
        self.body = body
        super().__init__(f"{endpoint} answered {code}: {self.description}")

    #: A coded answer is always certain: the provider read the call and said no.
    ambiguous = False
    retry_after: float | None = None

    @property
    def kind(self) -> Kind:
        return self.info.kind

    @property
    def retryable(self) -> bool:
        return self.kind is Kind.RETRYABLE

    @property
    def is_balance(self) -> bool:
        return self.kind is Kind.BALANCE

    @property
    def is_sender_limit(self) -> bool:
        return self.kind is Kind.SENDER_LIMIT

    @property
    def is_account(self) -> bool:
        return self.kind is Kind.ACCOUNT

    @property
    def is_per_number(self) -> bool:
        return self.kind is Kind.PER_NUMBER

    @property
    def is_sender(self) -> bool:
        return self.kind is Kind.SENDER

    def __reduce__(self) -> tuple[object, ...]:  # keep it picklable across Celery's process pool
        return (type(self), (self.endpoint, self.code, self.body))


class OAuthError(DreamsError):
    """The token endpoint refused (`error`, `error_description` from its JSON)."""

    def __init__(self, endpoint: str, status: int, error: str, description: str = ""):
        self.endpoint = endpoint
        self.status = status
        self.error = error
        self.description = description
        super().__init__(f"{endpoint} answered HTTP {status} {error}: {description}".rstrip(": "))

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.endpoint, self.status, self.error, self.description))


class TransportError(DreamsError):
    """The call did not get a usable answer. Subclasses say whether it may have landed.

    Every subclass carries what a retry policy needs as attributes, so callers
    never have to know the classes: `retryable` (asking again may work),
    `ambiguous` (the provider may have accepted it: never resend blindly) and
    `retry_after` (seconds the provider asked us to wait, or None).
    """

    retryable = False
    #: True when the provider may have accepted the request (never resend blindly).
    ambiguous = False
    retry_after: float | None = None

    def __init__(self, endpoint: str, detail: str):
        self.endpoint = endpoint
        self.detail = detail
        super().__init__(f"{endpoint}: {detail}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.endpoint, self.detail))


class NotAccepted(TransportError):
    """Certainly not accepted: the request was refused or never arrived, so
    nothing of it was sent and it may be sent again (when `retryable`, now;
    otherwise once the cause is fixed)."""


class ProviderUnreachable(NotAccepted):
    """Connecting failed: the request never reached the provider, safe to retry."""

    retryable = True


class ServerError(NotAccepted):
    """HTTP 5xx: the provider refused to process the call; treated as not accepted."""

    retryable = True

    def __init__(
        self, endpoint: str, detail: str, status: int = 500, retry_after: float | None = None
    ):
        self.status = status
        self.retry_after = retry_after
        super().__init__(endpoint, detail)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.endpoint, self.detail, self.status, self.retry_after))


class Refusal(StrEnum):
    """Why an HTTP answer refused a call, which says what to do about it."""

    #: 408, 425, 429: asked to come back later (honour `retry_after`).
    RETRYABLE = "retryable"
    #: 3xx, 401, 403, 404, 405 and other 4xx: a wrong URL, credentials or
    #: allowlist; the same call will be refused again until the settings change.
    CONFIGURATION = "configuration"
    #: 413, 414, 431: the request was too big; a smaller batch may pass.
    TOO_LARGE = "too_large"


class HttpRefused(NotAccepted):
    """A non-200 HTTP answer that refused the call before any message was accepted.

    The provider reports its own errors with HTTP 200, so these come from the
    web server or a proxy in front of it: a redirect (never followed for a
    POST: it would arrive as a GET without the form), an authentication or
    allowlist wall, a wrong path, a body too large, a rate limit. `location`
    is where a redirect pointed (redacted).
    """

    def __init__(
        self,
        endpoint: str,
        detail: str,
        status: int,
        kind: Refusal | str,
        retry_after: float | None = None,
        location: str | None = None,
    ):
        self.status = status
        self.kind = Refusal(kind)
        self.retry_after = retry_after
        self.location = location
        super().__init__(endpoint, detail)

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.kind is Refusal.RETRYABLE

    @property
    def is_configuration(self) -> bool:
        return self.kind is Refusal.CONFIGURATION

    @property
    def too_large(self) -> bool:
        return self.kind is Refusal.TOO_LARGE

    def __reduce__(self) -> tuple[object, ...]:
        return (
            type(self),
            (self.endpoint, self.detail, self.status, self.kind.value, self.retry_after,
             self.location),
        )


class OutcomeUnknown(TransportError):
    """The request was sent but no answer came back (read timeout, dropped
    connection): the provider may or may not have accepted it."""

    ambiguous = True


class GarbledResponse(OutcomeUnknown):
    """An answer we cannot read. For a send it is as ambiguous as no answer."""

    def __init__(self, endpoint: str, detail: str, body: str = ""):
        self.body = body
        super().__init__(endpoint, detail)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.endpoint, self.detail, self.body))


class BulkInterrupted(DreamsError):
    """`send_bulk` stopped midway: `committed` rows (counted from the first) are
    queued, the rest are not. Call it again with the same rows,
    `campaign=exc.campaign` and `resume=True` to queue the rest once."""

    def __init__(self, campaign: str, committed: int | None, cause: BaseException):
        self.campaign = campaign
        self.committed = committed
        done = "an unknown number of" if committed is None else f"the first {committed:,}"
        super().__init__(
            f"bulk import into campaign {campaign} stopped after {done} rows "
            f"({type(cause).__name__}: {str(cause)[:200]}); resume with send_bulk(..., "
            f"campaign={campaign!r}, resume=True) and the same rows")

    def __reduce__(self) -> tuple[object, ...]:
        return (_bulk_interrupted, (self.campaign, self.committed, str(self)))


def _bulk_interrupted(campaign: str, committed: int | None, message: str) -> BulkInterrupted:
    exc = BulkInterrupted.__new__(BulkInterrupted)
    exc.campaign, exc.committed = campaign, committed
    DreamsError.__init__(exc, message)
    return exc


class NotReplicated(DreamsError):
    """A write reached the Redis master but not the replicas required in time
    (`DREAMS_REPLICA_ACKS`, `DREAMS_REPLICA_TIMEOUT`): a failover now could
    forget it. Workers never send on such a lease; a producer is told its
    message may not be kept (retry with the same `key`)."""

    def __init__(self, what: str, acks: int, required: int):
        self.acks = acks
        self.required = required
        super().__init__(f"{what} confirmed by {acks} of the {required} replicas required")

    def __reduce__(self) -> tuple[object, ...]:
        return (_not_replicated, (str(self), self.acks, self.required))


def _not_replicated(message: str, acks: int, required: int) -> NotReplicated:
    exc = NotReplicated.__new__(NotReplicated)
    exc.acks, exc.required = acks, required
    DreamsError.__init__(exc, message)
    return exc


class Paused(DreamsError):
    """Sending is paused (balance, account problem or an operator)."""
