"""A campaign body, streamed: bytes as they arrive -> rows -> the producer.

The request body is never held whole. The event loop hands chunks to a worker
thread on demand (`BodyStream`), `ops.bulkfile` turns them into rows with
their line numbers and reasons, and `Producer.send_bulk` queues them in
chunks as they come, so a million-row upload costs the memory of a chunk
(and four bytes per row, to name the line of a row the producer refuses).
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from dreams_sms.api import models
from dreams_sms.api.errors import UnsupportedMedia
from dreams_sms.ops.bulkfile import BAD_KEEP, BadRow, Format, Row

#: Media type -> the reader of `ops.bulkfile` that takes it.
MEDIA_TYPES: dict[str, Format] = {
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/json": "json",
}

_READ = 64 * 1024


def format_of(content_type: str | None) -> Format:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedMedia(
            f"Content-Type {media or 'missing'!r}: send text/csv, application/x-ndjson "
            "or application/json (an array of rows)", field="Content-Type")
    return MEDIA_TYPES[media]


class BodyError(OSError):
    """Reading the body failed (too large, client gone): carries the cause as `.error`.

    An OSError, so `send_bulk` reports it as `BulkInterrupted` with the rows
    it had committed, like any other failure to read its rows.
    """

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class BodyStream(io.RawIOBase):
    """A read-only binary stream over `pull()`, which returns the next chunk (b"" at the end)."""

    def __init__(self, pull: Callable[[], bytes]):
        self._pull = pull
        self._chunk = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._chunk and not self._done:
            try:
                self._chunk = self._pull()
            except Exception as exc:
                raise BodyError(exc) from exc
            self._done = not self._chunk
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n


def reader(pull: Callable[[], bytes]) -> io.BufferedReader:
    return io.BufferedReader(BodyStream(pull), buffer_size=_READ)


@dataclass
class RowFeed:
    """The valid rows of `items`, for `send_bulk`; the bad ones kept aside by line."""

    items: Iterable[Row | BadRow]

    def __post_init__(self) -> None:
        self.bad: list[BadRow] = []
        self.bad_count = 0
        self.lines = array("I")  # line of each row handed on, by its index

    def __iter__(self) -> Iterator[Row]:
        for item in self.items:
            if isinstance(item, Row):
                self.lines.append(item.line)
                yield item
            else:
                self.refuse(item.line, item.reason)

    def refuse(self, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < BAD_KEEP:
            self.bad.append(BadRow(line, reason, ""))

    def answer(self, campaign: str, queued: int, rejected: list[tuple[int, str]],
               rejected_count: int) -> models.CampaignQueued:
        """The reply: rows the producer refused join the reader's, by line."""
        for index, reason in rejected:
            self.refuse(self.lines[index] if index < len(self.lines) else 0, reason)
        self.bad_count += rejected_count - len(rejected)
        bad = sorted(self.bad, key=lambda b: b.line)[:BAD_KEEP]
        return models.CampaignQueued(
            id=campaign, queued=queued, bad=self.bad_count,
            bad_rows=[models.BadRow(line=b.line, reason=b.reason) for b in bad])
