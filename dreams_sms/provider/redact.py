"""Hide secrets in text that is about to be printed, logged or raised.

The provider takes `secret_key` in every form body and OAuth adds client
secrets and tokens, so any dump of a request is a credential leak waiting to
happen. Everything that shows a request, a URL or a body goes through here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

#: Parameter names whose values are secret wherever they appear. `pass` is the
#: legacy API's password.
SECRET_NAMES = (
    "secret_key",
    "client_secret",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "password",
    "passwd",
    "pass",
    "api_key",
    "apikey",
    "x-api-key",
)
#: Secret only inside a request: `code` is the activation code in a form or
#: query (`&code=...`), but in a log line (`code=-113`) it is the provider's
#: answer code, which operators need to see.
FORM_SECRET_NAMES = ("code",)
#: Every request field whose value is masked when a provider echoes it back.
REQUEST_SECRET_NAMES = SECRET_NAMES + FORM_SECRET_NAMES
_NAMES = "|".join(sorted(SECRET_NAMES, key=len, reverse=True))
_FORM_NAMES = "|".join(FORM_SECRET_NAMES)

# `secret_key=abc&...` in form bodies and query strings, and `key=value` in log lines.
_FORM = re.compile(rf"(?<![\w%])({_NAMES})=([^&\s'\"]+)", re.I)
# `...&code=abc` or `code=abc&...`: a form field, not a log line's `code=-113`.
_VALUE = r"""[^&\s'"]+"""
_FORM_ONLY = re.compile(
    rf"(?<=[?&])({_FORM_NAMES})={_VALUE}|(?<![\w%])({_FORM_NAMES})={_VALUE}(?=&)", re.I
)
# `"secret_key": "abc"` in JSON and `'token': 'abc'` in Python reprs.
_MAPPING = re.compile(
    rf"""(["'])({_NAMES}|{_FORM_NAMES})\1(\s*:\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,}}\]]+)""",
    re.I,
)
# A provider answer code as a JSON or repr value: `-113`, `999`, or a quoted `"-113"`
# (activation codes are never negative, so a quoted positive number stays secret).
_ANSWER_CODE = re.compile(r"""-?[0-9]{1,9}|(["'])-[0-9]{1,9}\1""")
# `Bearer abc` anywhere; `Authorization: <scheme> abc` in headers and their reprs.
_BEARER = re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=:-]+", re.I)
_AUTH_HEADER = re.compile(
    r"""((?:authorization|x-api-key)["']?\s*[:=]\s*["']?)((?:Bearer|Basic|Digest)\s+)?"""
    r"""[^\s'",}]+""",
    re.I,
)
# `redis://:pw@host`, `rediss://user:pw@host`, `https://user:pw@host`.
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)([^\s:/?#@]*):([^\s@/?#]*)@", re.I)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with secret parameters, tokens and URL passwords masked.

    `secrets` are literal values known to the caller (the account's key, the
    current token); they are masked wherever they appear, whatever the shape.
    """
    if not isinstance(text, str):
        text = str(text)
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    text = _USERINFO.sub(rf"\1\2:{MASK}@", text)
    text = _FORM.sub(rf"\1={MASK}", text)
    text = _FORM_ONLY.sub(_form_only, text)
    text = _MAPPING.sub(_mapping, text)
    text = _BEARER.sub(rf"\1{MASK}", text)
    return _AUTH_HEADER.sub(lambda m: f"{m[1]}{m[2] or ''}{MASK}", text)


def redact_url(url: str) -> str:
    """`url` with its password and any secret query parameters masked."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return redact(url)
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    query = _FORM_ONLY.sub(_form_only, _FORM.sub(rf"\1={MASK}", parts.query))
    fragment = _FORM_ONLY.sub(_form_only, _FORM.sub(rf"\1={MASK}", parts.fragment))
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def _form_only(m: re.Match[str]) -> str:
    return f"{m[1] or m[2]}={MASK}"


def _mapping(m: re.Match[str]) -> str:
    quote, name, sep, value = m.groups()
    if name.lower() in FORM_SECRET_NAMES and _ANSWER_CODE.fullmatch(value):
        return m[0]  # a numeric `code` is a provider answer code, not an activation code
    return f'{quote}{name}{quote}{sep}"{MASK}"'


class RedactingFilter:
    """A logging filter that hides secrets in every record, whoever logs it.

    Defence in depth: our code never logs a secret, but a library's message
    (a URL with a password, a form body in a debug line) might.
    """

    def filter(self, record: object) -> bool:
        msg = getattr(record, "msg", None)
        args = getattr(record, "args", None)
        if isinstance(msg, str):
            try:
                text = msg % args if args else msg
            except (TypeError, ValueError):
                text = msg
            cleaned = redact(text)
            if cleaned != text:
                record.msg, record.args = cleaned, ()  # type: ignore[attr-defined]
        return True
