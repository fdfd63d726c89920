"""How many SMS segments a text costs.

The provider bills per segment, so the worker (to budget balance) and the
sandbox (to charge it) must count the same way. GSM-7 texts fit 160 septets
in one segment and 153 per part once concatenated; extension characters cost
two septets (escape + char). Any other character switches the whole text to
UCS-2: 70 UTF-16 code units in one segment, 67 per part.
"""

from __future__ import annotations

import re
from typing import Literal

#: The GSM 03.38 default alphabet (without the ESC code itself).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters reached through the escape code: two septets each.
GSM7_EXTENSION = "^{}\\[~]|€\f"

_NOT_GSM7 = re.compile(f"[^{re.escape(GSM7_BASIC + GSM7_EXTENSION)}]")
_EXTENSION = re.compile(f"[{re.escape(GSM7_EXTENSION)}]")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

Encoding = Literal["GSM-7", "UCS-2"]


def is_gsm7(text: str) -> bool:
    """True when every character has a GSM-7 code (basic or extension)."""
    return _NOT_GSM7.search(text) is None


def encoding(text: str) -> Encoding:
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def septets(text: str) -> int:
    """GSM-7 length: extension characters count twice. Only meaningful if `is_gsm7`."""
    return len(text) + len(_EXTENSION.findall(text))


def ucs2_units(text: str) -> int:
    """UTF-16 code units: characters outside the BMP (emoji) take two."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def segments(text: str) -> int:
    """Segments billed for `text`; 0 for the empty text.

    The one-segment threshold compares septets (not characters) with 160, so
    a 159-character text with one `€` already needs two segments.
    """
    if not text:
        return 0
    if is_gsm7(text):
        n, single, part = septets(text), GSM7_SINGLE, GSM7_PART
    else:
        n, single, part = ucs2_units(text), UCS2_SINGLE, UCS2_PART
    return 1 if n <= single else -(-n // part)
