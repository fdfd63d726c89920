"""Segment counting: fixed examples plus properties over generated texts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dreams_sms.provider.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    encoding,
    is_gsm7,
    segments,
    septets,
    ucs2_units,
)

basic = st.text(alphabet=GSM7_BASIC, max_size=800)
gsm7 = st.text(alphabet=GSM7_BASIC + GSM7_EXTENSION, max_size=800)
non_gsm_char = st.characters(
    blacklist_characters=GSM7_BASIC + GSM7_EXTENSION, blacklist_categories=("Cs",)
)
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=600)


@pytest.mark.parametrize(
    ("text", "expected", "enc"),
    [
        ("", 0, "GSM-7"),
        ("a", 1, "GSM-7"),
        ("a" * 160, 1, "GSM-7"),
        ("a" * 161, 2, "GSM-7"),
        ("a" * 306, 2, "GSM-7"),
        ("a" * 307, 3, "GSM-7"),
        ("€" * 80, 1, "GSM-7"),
        ("€" * 81, 2, "GSM-7"),
        ("a" * 159 + "{", 2, "GSM-7"),
        ("\f" * 80, 1, "GSM-7"),
        ("مرحبا", 1, "UCS-2"),
        ("ش" * 70, 1, "UCS-2"),
        ("ش" * 71, 2, "UCS-2"),
        ("ش" * 134, 2, "UCS-2"),
        ("ش" * 135, 3, "UCS-2"),
        ("a" * 159 + "`", 3, "UCS-2"),  # backtick is not GSM-7
        ("😀" * 35, 1, "UCS-2"),  # 70 UTF-16 units
        ("😀" * 36, 2, "UCS-2"),
    ],
)
def test_examples(text: str, expected: int, enc: str) -> None:
    assert segments(text) == expected
    assert encoding(text) == enc


@given(basic)
def test_basic_gsm7_counts_characters(text: str) -> None:
    n = len(text)
    expected = 0 if n == 0 else 1 if n <= 160 else math.ceil(n / 153)
    assert is_gsm7(text)
    assert septets(text) == n
    assert segments(text) == expected


@given(basic, st.text(alphabet=GSM7_EXTENSION, min_size=1, max_size=50))
def test_extension_chars_cost_two_septets(text: str, ext: str) -> None:
    mixed = text + ext
    assert is_gsm7(mixed)
    n = len(text) + 2 * len(ext)
    assert septets(mixed) == n
    assert segments(mixed) == (1 if n <= 160 else math.ceil(n / 153))


@given(gsm7, non_gsm_char, gsm7)
def test_one_foreign_char_makes_it_ucs2(before: str, ch: str, after: str) -> None:
    text = before + ch + after
    assert not is_gsm7(text)
    assert encoding(text) == "UCS-2"
    units = len(text.encode("utf-16-le")) // 2
    assert ucs2_units(text) == units
    assert segments(text) == (1 if units <= 70 else math.ceil(units / 67))


@given(any_text)
def test_segments_hold_the_text(text: str) -> None:
    n = segments(text)
    size = septets(text) if is_gsm7(text) else ucs2_units(text)
    single, part = (160, 153) if is_gsm7(text) else (70, 67)
    if not text:
        assert n == 0
    elif n == 1:
        assert size <= single
    else:
        assert (n - 1) * part < size <= n * part
        assert size > single


@given(any_text, any_text)
def test_appending_never_costs_less(a: str, b: str) -> None:
    assert segments(a + b) >= segments(a)


@given(any_text)
def test_encoding_agrees_with_is_gsm7(text: str) -> None:
    assert (encoding(text) == "GSM-7") is is_gsm7(text)
