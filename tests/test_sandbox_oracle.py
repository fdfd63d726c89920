"""The sandbox is an independent oracle: its reading of the reference agrees
with the client's, and it shares no code with the client that could make the
same mistake on both sides."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dreams_sms.provider import codes
from dreams_sms.provider.segments import segments as client_segments
from dreams_sms.sandbox import Sandbox, reference
from dreams_sms.sandbox.faults import canonical_endpoint
from dreams_sms.sandbox.redaction import redact
from dreams_sms.sandbox.reference import segments as sandbox_segments
from dreams_sms.sandbox.state import DEMO_SECRET, DEMO_USER

SANDBOX = Path(reference.__file__).parent

ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
# Spelt out here, not taken from either side under test.
GSM_EXTENSION = st.sampled_from("€{}[]~^\\|\f")
GSM_BASIC_NON_ASCII = st.sampled_from("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r")
NEAR_GSM = st.sampled_from("çÀÈÉÌÒÙáíóú`¢\u00a0\x1b\t")  # look GSM-ish, are not (but É)
ARABIC = st.characters(min_codepoint=0x0600, max_codepoint=0x06FF)
EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
ANY = st.characters(codec="utf-8")  # surrogates cannot be sent


def _texts(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Short texts, and long ones (a drawn piece repeated, then a tail) that
    land near the 70/67 and 160/153 boundaries: a plain text strategy rarely
    draws past 70 characters, where the two counts could differ."""
    short = st.text(alphabet, min_size=1, max_size=40)
    long = st.builds(
        lambda piece, times, tail: piece * times + tail,
        st.text(alphabet, min_size=1, max_size=6),
        st.integers(min_value=10, max_value=160),
        st.text(alphabet, max_size=6),
    )
    edges = [k * part + d for part in (67, 70, 153, 160) for k in (1, 2, 3, 4) for d in (-1, 0, 1)]
    exact = st.builds(
        lambda piece, n: (piece * n)[:n],
        st.text(alphabet, min_size=1, max_size=6),
        st.sampled_from(edges),
    )
    return st.one_of(short, long, exact)


BOUNDARIES = [
    "a" * n for n in (1, 159, 160, 161, 305, 306, 307, 459, 460)
] + [
    "€" * 80, "€" * 81, "€" * 153, "€" * 154,
    "م" * 70, "م" * 71, "م" * 134, "م" * 135,
    "😀" * 35, "😀" * 36, "a" * 68 + "😀", "a" * 69 + "😀",
    "\f", "\x1b", "\u00a0", "ç", "Ç", "`", "ÄÖÑÜ§¿äöñüà",
]


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        _texts(ASCII),
        _texts(st.one_of(ASCII, GSM_EXTENSION)),
        _texts(st.one_of(GSM_BASIC_NON_ASCII, GSM_EXTENSION)),
        _texts(st.one_of(ASCII, GSM_BASIC_NON_ASCII, GSM_EXTENSION)),
        _texts(st.one_of(ASCII, NEAR_GSM)),
        _texts(ARABIC),
        _texts(EMOJI),
        _texts(st.one_of(ASCII, GSM_EXTENSION, ARABIC, EMOJI)),
        _texts(ANY),
    )
)
def test_sandbox_counts_segments_as_the_client_does(text: str) -> None:
    assert sandbox_segments(text) == client_segments(text), repr(text)


@pytest.mark.parametrize("text", BOUNDARIES, ids=lambda t: f"{t[:3]!r}x{len(t)}")
def test_segment_boundaries_agree(text: str) -> None:
    assert sandbox_segments(text) == client_segments(text)


def test_every_bmp_character_is_classified_alike() -> None:
    """Exhaustive where it is cheap: each character repeated 100 times is one
    part in GSM-7 basic, two as an extension or UCS-2 character, so any
    character the two sides put in different tables shows."""
    differ = [
        f"U+{code:04X}"
        for code in range(0x10000)
        if not 0xD800 <= code <= 0xDFFF
        and sandbox_segments(chr(code) * 100) != client_segments(chr(code) * 100)
    ]
    assert differ == []


def test_an_empty_text_is_refused_before_it_is_counted() -> None:
    """The one reading that differs: the reference is silent on an empty text;
    the sandbox counts it as one part (an SMS without text is still one
    message), the client as none. Neither charges it: the client refuses it
    in `validate`, the sandbox answers -100 before counting."""
    assert sandbox_segments("") == 1
    assert client_segments("") == 0
    sandbox = Sandbox()
    before = sandbox.state()["accounts"][DEMO_USER]["balance"]
    for message in ("", "  "):
        params = {"user": DEMO_USER, "secret_key": DEMO_SECRET, "sender": "Dreams",
                  "to": "966500000001", "message": message}
        assert sandbox.api("sendsms", params).body == b"-100"
    assert sandbox.state()["accounts"][DEMO_USER]["balance"] == before


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
        ("{" * 80, 1), ("{" * 81, 2),  # an extension character is two septets
        ("م" * 70, 1), ("م" * 71, 2), ("م" * 134, 2), ("م" * 135, 3),
        ("😀" * 35, 1), ("😀" * 36, 2),  # beyond the BMP: two UTF-16 units
        ("a" * 159 + "é", 1),  # é is GSM-7 basic
        ("a" * 159 + "ç", 3),  # ç is not (only Ç is): the whole text is UCS-2
    ],
)
def test_sandbox_segments_follow_gsm_03_38(text: str, parts: int) -> None:
    assert sandbox_segments(text) == parts


def test_sandbox_endpoints_are_the_client_code_table() -> None:
    assert set(reference.ENDPOINTS) == set(codes.ENDPOINTS)


@pytest.mark.parametrize("endpoint", codes.ENDPOINTS)
def test_every_client_endpoint_is_served(endpoint: str) -> None:
    assert canonical_endpoint(endpoint) == endpoint
    assert canonical_endpoint(endpoint.upper()) == endpoint


def _outside_imports(path: Path) -> list[str]:
    """Modules of `dreams_sms` outside the sandbox that `path` imports."""
    package = "dreams_sms.sandbox"
    parts = package.split(".")  # the package `from .x` is relative to
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `..` climbs one package per extra dot
                base = parts[: len(parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [module]
        else:
            continue
        for name in names:
            inside = name == package or name.startswith(package + ".")
            if (name == "dreams_sms" or name.startswith("dreams_sms.")) and not inside:
                found.append(f"{path.name}:{node.lineno} imports {name}")
    return found


def test_sandbox_imports_nothing_of_the_rest() -> None:
    modules = sorted(SANDBOX.rglob("*.py"))
    assert len(modules) > 5
    bad = [hit for path in modules for hit in _outside_imports(path)]
    assert bad == []


def test_the_import_rule_would_catch_an_outside_import(tmp_path: Path) -> None:
    cases = {
        "a.py": "from dreams_sms.provider.segments import segments\n",
        "b.py": "import dreams_sms.config\n",
        "c.py": "from ..provider import codes\n",
        "d.py": "def f():\n    from dreams_sms import errors\n",
        "e.py": "from .. import config\n",
    }
    for name, source in cases.items():
        (tmp_path / name).write_text(source)
        assert _outside_imports(tmp_path / name), name
    (tmp_path / "ok.py").write_text("from .faults import Faults\nimport dreams_sms.sandbox.state\n")
    assert _outside_imports(tmp_path / "ok.py") == []


def test_printed_tracebacks_lose_their_secrets() -> None:
    shown = redact(
        "KeyError: user=demo&secret_key=s3cret&to=966500000001\n"
        "{'client_secret': 'cs', 'refresh_token': \"rt\", 'user': 'demo'}\n"
        "Authorization: Bearer tok123\nX-Sandbox-Admin-Token: adm1n\n"
        '{"password": "hunter22", "access_token": "at"}'
    )
    for secret in ("s3cret", "cs'", "rt\"", "tok123", "adm1n", "hunter22", '"at"'):
        assert secret not in shown
    assert "user=demo" in shown and "966500000001" in shown and "'demo'" in shown
