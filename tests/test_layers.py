"""Imports flow one way between the wings (see docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dreams_sms"

#: wing -> module prefixes it must never import
FORBIDDEN = {
    "provider": ("dreams_sms.queue", "dreams_sms.worker", "dreams_sms.ops", "dreams_sms.producer",
                 "redis", "celery", "kombu"),
    "queue": ("dreams_sms.worker", "dreams_sms.ops", "dreams_sms.producer", "celery", "kombu"),
    "worker": ("dreams_sms.ops", "dreams_sms.producer"),
    # The HTTP API stands beside the producer: it queues and reads, never sends.
    "api": ("dreams_sms.worker", "dreams_sms.sandbox", "celery", "kombu"),
    "sandbox": ("dreams_sms.provider", "dreams_sms.queue", "dreams_sms.worker", "dreams_sms.ops",
                "dreams_sms.producer", "dreams_sms.config", "dreams_sms.errors"),
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def test_no_wing_imports_what_it_must_not():
    assert all((PACKAGE / wing).is_dir() for wing in FORBIDDEN)
    bad = []
    for wing, forbidden in FORBIDDEN.items():
        for path in (PACKAGE / wing).rglob("*.py"):
            for name in imports(path):
                if name.startswith(forbidden):
                    bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not bad, "\n".join(bad)


#: The one piece of the operator's face another wing may use: the campaign file reader,
#: which the API's upload shares (one reading of CSV and JSON Lines, one set of reasons).
SHARED_OPS = ("dreams_sms.ops.bulkfile",)


def test_nothing_imports_the_operator_face_but_the_entry_points():
    """The HTTP face (api/) is an operator's face too: it may."""
    allowed = {PACKAGE / "__main__.py"}
    bad = [f"{p.relative_to(PACKAGE)} imports {n}"
           for p in PACKAGE.rglob("*.py") if p not in allowed and "ops" not in p.parts
           for n in imports(p) if n.startswith("dreams_sms.ops")
           and not ("api" in p.parts and n.startswith(SHARED_OPS))]
    assert not bad, "\n".join(bad)


def test_only_the_operator_face_starts_the_api():
    bad = [f"{p.relative_to(PACKAGE)} imports {n}"
           for p in PACKAGE.rglob("*.py") if not {"ops", "api"} & set(p.parts)
           for n in imports(p) if n.startswith("dreams_sms.api")]
    assert not bad, "\n".join(bad)


def test_the_api_rules_bite():
    """The api entries above are not vacuous: the package exists and uses what it may."""
    names = set().union(*(imports(p) for p in (PACKAGE / "api").rglob("*.py")))
    assert "dreams_sms.producer" in names and "dreams_sms.ops.bulkfile" in names
    assert not any(n.startswith(("dreams_sms.worker", "dreams_sms.sandbox")) for n in names)
