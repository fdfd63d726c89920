"""The provider's reference, read again for the sandbox alone.

The sandbox is the oracle the client is checked against, so it must not share
the client's reading of the reference: a counting mistake in shared code would
be made on both sides and never show. These are written from the provider
reference (/work/shared/dreams-api.md) and GSM 03.38, not from
`dreams_sms.provider`; tests compare the two readings.
"""

from __future__ import annotations

#: Every `/api/<name>` endpoint in the provider reference, spelt as it is there.
ENDPOINTS: tuple[str, ...] = (
    "Register",
    "activate",
    "chk_user",
    "chk_balance",
    "newsender",
    "senderstatus",
    "usersender",
    "sendsms",
    "sendsms_multi",
)

# GSM 03.38 default alphabet, in code order 0x00-0x7F; 0x1B (escape to the
# extension table) is not a character of its own and is left out.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ" "ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each is sent as escape + code, two septets.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153  # septets: one whole SMS, one part of a long one
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 code units, likewise


def gsm7_septets(text: str) -> int | None:
    """Septets `text` takes in GSM-7, or None when a character is not in it."""
    count = 0
    for char in text:
        if char in GSM_BASIC:
            count += 1
        elif char in GSM_EXTENSION:
            count += 2
        else:
            return None
    return count


def utf16_units(text: str) -> int:
    """UCS-2 length as a handset counts it: characters beyond the BMP (most
    emoji) are a surrogate pair, two units."""
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def segments(text: str) -> int:
    """SMS parts the provider charges for `text`: GSM-7 when every character
    fits, else UCS-2; a long message loses room in each part to its header.
    An empty text still costs one part."""
    septets = gsm7_septets(text)
    if septets is not None:
        length, single, part = septets, GSM7_SINGLE, GSM7_PART
    else:
        length, single, part = utf16_units(text), UCS2_SINGLE, UCS2_PART
    if length <= single:
        return 1
    return -(-length // part)
