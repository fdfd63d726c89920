"""dreams_sms: a queue-backed bulk SMS worker for the Dreams SMS API."""

from dreams_sms.errors import (
    ConfigError,
    DreamsError,
    GarbledResponse,
    HttpRefused,
    InvalidNumber,
    InvalidOption,
    InvalidText,
    NotAccepted,
    OAuthError,
    OutcomeUnknown,
    ProviderError,
    ProviderUnreachable,
    Refusal,
    ServerError,
    TransportError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DreamsError",
    "GarbledResponse",
    "HttpRefused",
    "InvalidNumber",
    "InvalidOption",
    "InvalidText",
    "NotAccepted",
    "OAuthError",
    "OutcomeUnknown",
    "ProviderError",
    "ProviderUnreachable",
    "Refusal",
    "ServerError",
    "TransportError",
    "ValidationError",
    "__version__",
]
