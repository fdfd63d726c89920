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
    # The HTTP face reads and queues like application code: never the worker's insides
    # or the sandbox (the API process must not be able to send by itself).
    "api": ("dreams_sms.worker", "dreams_sms.sandbox"),
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


def test_nothing_imports_the_operator_face_but_the_entry_points():
    """The HTTP face (api/) is an operator's face too: it may."""
    allowed = {PACKAGE / "__main__.py"}
    bad = [f"{p.relative_to(PACKAGE)} imports {n}"
           for p in PACKAGE.rglob("*.py")
           if p not in allowed and "ops" not in p.parts and "api" not in p.parts
           for n in imports(p) if n.startswith("dreams_sms.ops")]
    assert not bad, "\n".join(bad)
