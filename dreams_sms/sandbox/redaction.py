"""Secrets out of what the sandbox prints.

A traceback may quote a request: its form, its JSON, its headers. The sandbox
keeps its own small redaction rather than borrowing the client's, so that it
runs on its own (it is the oracle, and imports nothing of the rest).
"""

from __future__ import annotations

import re

#: Parameters whose values are secrets on the provider's wire or the admin API.
SECRET_NAMES = (
    "secret_key",
    "password",
    "client_secret",
    "access_token",
    "refresh_token",
    "token",
)
MASK = "***"

_NAMES = "|".join(sorted(SECRET_NAMES, key=len, reverse=True))
# name=value in a form or query string, up to the next separator or quote
_FORM = re.compile(rf"(?i)(?<![\w-])((?:{_NAMES})=)[^&\s'\"]+")
# 'name': 'value' or "name": "value" in a repr or JSON
_QUOTED = re.compile(rf"(?i)(['\"](?:{_NAMES})['\"]\s*:\s*)(['\"])(?:\\.|(?!\2).)*\2")
# Authorization: Bearer ... and the admin token header
_HEADER = re.compile(r"(?i)((?:authorization\s*:\s*bearer|x-sandbox-admin-token\s*:)\s*)\S+")


def redact(text: str) -> str:
    """`text` with the value of every secret parameter or header masked."""
    text = _FORM.sub(rf"\1{MASK}", text)
    text = _QUOTED.sub(rf"\1\2{MASK}\2", text)
    return _HEADER.sub(rf"\1{MASK}", text)
