"""The record of accepted messages, and its journal.

What tests and the worker's reconciliation compare against: every accepted
message in order, by sender, and indexed by (sender, number, text) so that
duplicates are counted and lookups are cheap. With a journal (JSON lines) the
record survives a restart. `Record` takes no lock of its own: the `Sandbox`
that owns it holds its lock around every call.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

Key = tuple[str, str, str]  # (sender, to, text)


class Record:
    """Accepted messages, in memory and, when given a path, in a journal."""

    __slots__ = ("_accepted", "_by_sender", "_duplicates", "_journal", "_messages", "_seen", "_seq")

    _accepted: Counter[str]
    _by_sender: defaultdict[str, list[dict[str, Any]]]
    _duplicates: int
    _journal: TextIO | None
    _messages: list[dict[str, Any]]
    _seen: dict[Key, list[float]]
    _seq: int

    def __init__(self, journal: str | Path | None = None):
        self._journal = None
        self._clear()
        if journal is not None:
            self._replay(Path(journal))
            self._journal = open(journal, "a", encoding="utf-8")  # noqa: SIM115

    def reset(self) -> None:
        """Forget everything, the journal's content included."""
        self._clear()
        if self._journal is not None:
            self._journal.truncate(0)

    def accept(
        self,
        user: str,
        sender: str,
        items: list[tuple[str, str]],
        costs: list[int],
        options: dict[str, str],
        stamp: float,
    ) -> list[str]:
        """Append one record per item; returns their sms_ids. One tight loop:
        this is the hot path of a load test."""
        seq, dupes = self._seq, 0
        records, of_sender, index = self._messages, self._by_sender[sender], self._seen
        ids = []
        for (to, text), cost in zip(items, costs, strict=True):
            seq += 1
            sms_id = str(1_000_000_000 + seq)
            rec: dict[str, Any] = {
                "id": seq,
                "sms_id": sms_id,
                "to": to,
                "text": text,
                "sender": sender,
                "user": user,
                "time": stamp,
                "segments": cost,
            }
            if options:
                rec["options"] = options
            records.append(rec)
            of_sender.append(rec)
            key = (sender, to, text)
            seen = index.get(key)
            if seen is None:
                index[key] = [stamp]
            else:
                seen.append(stamp)
                dupes += 1
            ids.append(sms_id)
        self._seq = seq
        self._duplicates += dupes
        self._accepted[sender] += len(items)
        if self._journal is not None:
            self._journal.write(
                "".join(
                    json.dumps(r, ensure_ascii=False) + "\n"
                    for r in records[len(records) - len(items) :]
                )
            )
            self._journal.flush()
        return ids

    def page(self, offset: int, limit: int, sender: str | None = None) -> dict[str, Any]:
        """`limit` records from `offset`, of all or of one sender, and their total."""
        pool = self._messages if sender is None else self._by_sender.get(sender, [])
        return {"total": len(pool), "messages": pool[offset : offset + limit]}

    def lookup(self, keys: Sequence[Key], since: float) -> list[int]:
        """For each key: how many records were accepted at or after `since`."""
        return [sum(1 for t in self._seen.get(k, ()) if t >= since) for k in keys]

    @property
    def total(self) -> int:
        return len(self._messages)

    @property
    def duplicates(self) -> int:
        """Records whose (sender, number, text) had been accepted before."""
        return self._duplicates

    def accepted_by_sender(self) -> dict[str, int]:
        return dict(self._accepted)

    # -- internals -----------------------------------------------------------

    def _clear(self) -> None:
        self._seq = 0
        self._messages = []
        self._by_sender = defaultdict(list)
        self._seen = {}
        self._duplicates = 0
        self._accepted = Counter()

    def _replay(self, path: Path) -> None:
        """Reload the record of a previous run: what a provider accepted it remembers."""
        if not path.exists():
            return
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                key = (rec["sender"], rec["to"], rec["text"])
                self._messages.append(rec)
                self._by_sender[rec["sender"]].append(rec)
                if key in self._seen:
                    self._duplicates += 1
                self._seen.setdefault(key, []).append(rec["time"])
                self._accepted[rec["sender"]] += 1
                self._seq = max(self._seq, int(rec["id"]))


def lookup_keys(sender: str, items: Sequence[Mapping[str, str]]) -> list[Key]:
    """The record keys of `{to, text}` items (numbers without white space)."""
    keys = []
    for item in items:
        if not isinstance(item, Mapping) or "to" not in item or "text" not in item:
            raise ValueError("each item needs 'to' and 'text'")
        keys.append((sender, "".join(str(item["to"]).split()), str(item["text"])))
    return keys
