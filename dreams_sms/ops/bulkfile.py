"""Reading campaign files (CSV or JSON Lines), one record at a time.

Files come from spreadsheets and exports of every quality, and hold millions
of rows, so nothing here loads a whole file and nothing one bad row does can
stop the rows after it: each record becomes either a validated `Row` or a
`BadRow` saying which physical line is wrong and why, for the operator to fix.

Bytes are read line by line and decoded per line, so a cp1256 or latin-1 row
spoils that row only. CSV is parsed strictly; a quote left open would swallow
every row after it, so a record spanning lines that turns out broken (or that
swallowed a row: see `_stray_quote`) costs only its first line, and reading
resumes on the next one.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, Literal, NamedTuple

from dreams_sms.errors import ValidationError
from dreams_sms.provider.validate import (
    DEFAULT_MAX_TEXT_LENGTH,
    SENDSMS_OPTIONS,
    check_options,
    check_text,
    normalize_number,
)

#: "json" (one JSON array of row objects) is read only when asked for by name:
#: a `.json` file is taken for JSON Lines, as before.
Format = Literal["csv", "jsonl", "json"]

#: A record (all its physical lines) larger than this is refused, not parsed.
MAX_ROW_BYTES = 64 * 1024
#: `Summary.bad` keeps this many examples; `Summary.bad_count` counts them all.
BAD_KEEP = 1000
MAX_KEY_LENGTH = 200

NUMBER_FIELDS = ("number", "to", "mobile", "phone")
TEXT_FIELDS = ("text", "message")
KEY_FIELD = "key"
_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_ALLOWED = ", ".join((*NUMBER_FIELDS, *TEXT_FIELDS, *sorted(SENDSMS_OPTIONS), KEY_FIELD))
_TOO_BIG = f"row larger than {MAX_ROW_BYTES // 1024} KiB"

# Big enough for any record we accept; MAX_ROW_BYTES is the real guard.
csv.field_size_limit(max(csv.field_size_limit(), MAX_ROW_BYTES * 2))


@dataclass(frozen=True, slots=True)
class Row:
    """A record ready to queue: number normalized, text and options checked."""

    line: int
    to: str
    text: str
    options: dict[str, str] = field(default_factory=dict)
    key: str | None = None


@dataclass(frozen=True, slots=True)
class BadRow:
    """A refused record: where it starts, why, and its start (safe to print)."""

    line: int
    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class Summary:
    """What a file would cost, before anything is queued."""

    valid: int
    bad: list[BadRow]  # the first BAD_KEEP of them
    segments: int
    bad_count: int  # all of them

    @property
    def total(self) -> int:
        return self.valid + self.bad_count


# ------------------------------------------------------------ physical lines


class _Line(NamedTuple):
    number: int  # 1-based physical line number
    text: str  # decoded; undecodable bytes kept as surrogate escapes
    bad_utf8: bool
    huge: bool  # longer than MAX_ROW_BYTES; text holds only its start


def _physical_lines(f: BinaryIO) -> Iterator[_Line]:
    """Lines as bytes, decoded one by one so a bad byte spoils one record only."""
    number = 0
    while True:
        chunk = f.readline(MAX_ROW_BYTES + 1)
        if not chunk:
            return
        if not isinstance(chunk, bytes | bytearray):
            raise TypeError("bulk files must be opened in binary mode ('rb')")
        number += 1
        if number == 1 and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        if len(chunk) > MAX_ROW_BYTES and not chunk.endswith(b"\n"):
            start = chunk[:320]
            while chunk and not chunk.endswith(b"\n"):  # skip the rest, bounded memory
                chunk = f.readline(MAX_ROW_BYTES)
            yield _Line(number, start.decode("utf-8", "surrogateescape"), False, True)
            continue
        try:
            line = _Line(number, chunk.decode("utf-8"), False, False)
        except UnicodeDecodeError:
            line = _Line(number, chunk.decode("utf-8", "surrogateescape"), True, False)
        yield line


def _printable(text: str, limit: int = 80) -> str:
    """`text` with controls, bidi marks and undecodable bytes escaped, cut to `limit`."""
    out: list[str] = []
    size = 0
    for ch in text:
        if ch.isprintable():
            piece = ch
        elif "\udc80" <= ch <= "\udcff":
            piece = f"\\x{ord(ch) - 0xDC00:02x}"
        elif ch in "\n\r\t":
            piece = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch]
        elif ord(ch) < 0x100:
            piece = f"\\x{ord(ch):02x}"
        else:
            piece = f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}"
        out.append(piece)
        size += len(piece)
        if size >= limit:
            break
    return "".join(out)[:limit]


def _bad(lines: list[_Line], reason: str) -> BadRow:
    raw = "".join(ln.text for ln in lines).removesuffix("\n").removesuffix("\r")
    return BadRow(lines[0].number, reason, _printable(raw))


# --------------------------------------------------------------------- CSV


class _TooBig(Exception):
    """Raised through csv.reader when a record grows past MAX_ROW_BYTES."""


class _Feeder:
    """Feeds physical lines to csv.reader, remembering those of the current
    record so a broken multi-line record can be re-read from its second line."""

    def __init__(self, lines: Iterator[_Line]):
        self._lines = lines
        self._back: deque[_Line] = deque()
        self.taken: list[_Line] = []
        self._size = 0

    def __iter__(self) -> _Feeder:
        return self

    def __next__(self) -> str:
        line = self._back.popleft() if self._back else next(self._lines)
        self.taken.append(line)
        self._size += len(line.text)
        if line.huge or self._size > MAX_ROW_BYTES:
            raise _TooBig
        return line.text

    def peek(self) -> _Line | None:
        if not self._back:
            nxt = next(self._lines, None)
            if nxt is None:
                return None
            self._back.append(nxt)
        return self._back[0]

    def upcoming(self) -> Iterator[_Line]:
        """The lines after the current record, looked at without consuming them."""
        i = 0
        while True:
            if i < len(self._back):
                yield self._back[i]
                i += 1
                continue
            nxt = next(self._lines, None)
            if nxt is None:
                return
            self._back.append(nxt)

    def start(self) -> None:
        self.taken = []
        self._size = 0

    def reread_after_first(self) -> None:
        """Give back all but the first line of the current record."""
        self._back.extendleft(reversed(self.taken[1:]))


_Record = tuple[list[_Line], list[str] | str]


def _records(feeder: _Feeder, reader: Iterator[list[str]]) -> Iterator[_Record]:
    """(lines, fields) per non-blank record, or (lines, reason) when it is
    broken. A broken record spanning lines only costs its first line."""
    while True:
        feeder.start()
        try:
            fields: list[str] | str = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields = _csv_problem(str(exc), len(feeder.taken))
        except _TooBig:
            fields = _TOO_BIG
        lines = feeder.taken
        if isinstance(fields, str):
            feeder.reread_after_first()
            yield lines[:1], fields
        elif any(f.strip() for f in fields):  # blank lines and ",,," are skipped
            yield lines, fields


def _csv_problem(error: str, spread: int) -> str:
    if spread > 1 or error == "unexpected end of data":
        return f"broken CSV: a quote opened on this line is not closed properly ({error})"
    return f"broken CSV: {error}"


def _delimiter(feeder: _Feeder) -> str:
    """',' unless the header plainly uses ';' or a tab (some spreadsheet locales)."""
    while (first := feeder.peek()) is not None and not first.text.strip():
        next(feeder)
    head = first.text if first is not None else ""
    if "," not in head:
        for d in ";\t":
            if d in head:
                return d
    return ","


def _header_error(message: str) -> ValidationError:
    return ValidationError(message, field="header")


def _columns(lines: list[_Line], fields: list[str] | str) -> list[str]:
    """Header cells -> column names, with the number and text aliases resolved."""
    if isinstance(fields, str):
        raise _header_error(f"line {lines[0].number}: unreadable header row ({fields})")
    if any(ln.bad_utf8 for ln in lines):
        raise _header_error(f"line {lines[0].number}: header row is not valid UTF-8")
    names = [f.strip().lower() for f in fields]
    seen: dict[str, str] = {}
    out: list[str] = []
    for raw, name in zip(fields, names, strict=True):
        if name in NUMBER_FIELDS:
            canon = "to"
        elif name in TEXT_FIELDS:
            canon = "text"
        elif name in SENDSMS_OPTIONS or name == KEY_FIELD:
            canon = name
        elif any(ch.isdigit() for ch in name):
            raise _header_error(
                f"line {lines[0].number}: the first row must be a header "
                f"(number,text,...), got {_printable(','.join(fields), 60)!r}"
            )
        else:
            raise _header_error(
                f"unknown column {_printable(raw, 40)!r} in the header; allowed: {_ALLOWED}"
            )
        if canon in seen:
            raise _header_error(f"columns {seen[canon]!r} and {name!r} in the header mean the same")
        seen[canon] = name
        out.append(canon)
    for canon, choices in (("to", NUMBER_FIELDS), ("text", TEXT_FIELDS)):
        if canon not in seen:
            raise _header_error(f"the header has no {' / '.join(choices)} column")
    return out


_SURROGATE = re.compile("[\udc80-\udcff]")


#: How many of a record's last lines may start a swallowed row (bounds the work).
_STRAY_LOOKBACK = 64


def _stray_quote(
    lines: list[_Line], feeder: _Feeder, delimiter: str, columns: list[str]
) -> int | None:
    """The line where a row of its own starts inside this multi-line record, if any.

    A quote left open swallows the rows after it until some quote happens to
    close it. Quote parity tells the two apart. In well-formed CSV a record
    spans lines only inside a quoted field, so reading afresh from one of its
    later lines to (at least) its end meets that field's closing quote plus
    doubled pairs: an odd number of quote marks. A swallowed row read afresh
    is a clean record with an even number. (Stray quotes in unquoted fields
    of a hand-written file can trip this; the record is then refused, never
    merged into another.) A fresh read that runs past the record's end must
    also look like a row, as parity then counts quotes of later rows.
    """
    for i in range(len(lines) - 1, max(0, len(lines) - 1 - _STRAY_LOOKBACK), -1):
        quotes = taken = 0

        def texts(start: int = i) -> Iterator[str]:
            nonlocal quotes, taken
            size = 0
            for line in itertools.chain(lines[start:], feeder.upcoming()):
                size += len(line.text)
                if line.huge or size > MAX_ROW_BYTES:
                    return
                quotes += line.text.count('"')
                taken += 1
                yield line.text

        try:
            first = next(csv.reader(texts(), delimiter=delimiter, strict=True), None)
        except csv.Error:
            continue
        if not first or taken < len(lines) - i or quotes % 2:
            continue
        if taken == len(lines) - i or _looks_like_a_row(first, columns):
            return lines[i].number
    return None


def _looks_like_a_row(fields: list[str], columns: list[str]) -> bool:
    """A valid number where the header puts it: the evidence asked for when a
    fresh read runs past the record, where quote parity also counts quotes of
    later rows. (The header's width alone is not: a two-column header is met
    by too many misreadings of well-formed rows.)"""
    to = columns.index("to")
    if len(fields) <= to:
        return False
    try:
        normalize_number(fields[to])
    except ValidationError:
        return False
    return True


def _read_csv(f: BinaryIO, max_text_length: int) -> Iterator[Row | BadRow]:
    feeder = _Feeder(_physical_lines(f))
    delimiter = _delimiter(feeder)
    reader = csv.reader(feeder, delimiter=delimiter, strict=True)
    records = _records(feeder, reader)
    first = next(records, None)
    if first is None:
        raise _header_error("the file is empty: a header row (number,text,...) is required")
    columns = _columns(*first)
    shown = {canon: name for canon, name in zip(columns, first[1], strict=True)}
    width = len(columns)

    for lines, fields in records:
        if isinstance(fields, str):
            yield _bad(lines, fields)
            continue
        if len(lines) > 1:
            # A quoted field spans lines. If it swallowed a row, the quote is a
            # stray one: refuse the line that opened it, read on from the next.
            problem = None
            if at := _stray_quote(lines, feeder, delimiter, columns):
                problem = f"runs into line {at}, which reads as a row of its own"
            if problem:
                feeder.reread_after_first()
                yield _bad(lines[:1], f"broken CSV: a quote opened on this line {problem}")
                continue
        if len(fields) != width:
            if len(fields) < width:
                missing = ", ".join(repr(shown[c].strip()) for c in columns[len(fields) :])
                yield _bad(lines, f"missing field(s) {missing}: {len(fields)} of {width} columns")
            else:
                yield _bad(lines, f"extra field(s): {len(fields)} columns, the header has {width}")
            continue
        values = dict(zip(columns, fields, strict=True))
        if any(ln.bad_utf8 for ln in lines):
            where = next((c for c in columns if _SURROGATE.search(values[c])), "to")
            yield _bad(lines, f"{shown[where].strip()}: not valid UTF-8")
            continue
        yield _row(lines, values, max_text_length, shown)


# ------------------------------------------------------------- JSON Lines

_NO_BOOL = frozenset({"to", KEY_FIELD, "reminder"})
_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _read_jsonl(f: BinaryIO, max_text_length: int) -> Iterator[Row | BadRow]:
    for line in _physical_lines(f):
        lines = [line]
        if line.huge:
            yield _bad(lines, _TOO_BIG)
            continue
        if not line.text.strip():
            continue
        if line.bad_utf8:
            yield _bad(lines, "not valid UTF-8")
            continue
        try:
            obj = json.loads(line.text)
        except json.JSONDecodeError as exc:
            yield _bad(lines, f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        except (ValueError, RecursionError) as exc:
            yield _bad(lines, f"not valid JSON: {type(exc).__name__}")
            continue
        if not isinstance(obj, dict):
            yield _bad(lines, f"expected a JSON object, got {_JSON_TYPES.get(type(obj), 'value')}")
            continue
        values, names, problem = _json_values(obj)
        if problem:
            yield _bad(lines, problem)
        else:
            yield _row(lines, values, max_text_length, names)


# -------------------------------------------------------- one JSON array

_JSON_CHUNK = 64 * 1024
_WS = re.compile(r"[ \t\r\n]*")


class _ArrayReader:
    """A JSON array read element by element from a binary stream.

    Unlike a line of JSON Lines, a broken element cannot be skipped (where
    the next one starts is unknown), so a syntax error ends the reading with
    one `BadRow` saying where; every element before it has been yielded.
    """

    def __init__(self, f: BinaryIO):
        self.f = f
        self.decode = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.line = 1  # the line of buf[pos]
        self.eof = False

    def more(self) -> bool:
        """Read the next chunk; False at the end of the stream."""
        if self.eof:
            return False
        chunk = self.f.read(_JSON_CHUNK)
        if not isinstance(chunk, bytes | bytearray):
            raise TypeError("bulk files must be opened in binary mode ('rb')")
        self.eof = not chunk
        text = self.decode.decode(bytes(chunk), final=self.eof)
        self.buf = self.buf[self.pos:] + text
        self.pos = 0
        return True

    def advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def peek(self) -> str | None:
        """The next character that is not white space, reading on as needed."""
        while True:
            m = _WS.match(self.buf, self.pos)
            self.advance(m.end() if m else self.pos)
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return None

    def value(self) -> tuple[object, str] | str:
        """(the next JSON value, its text), or why it cannot be read."""
        decoder = json.JSONDecoder()
        while True:
            try:
                obj, end = decoder.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof or isinstance(obj, dict | list):
                    text = self.buf[self.pos:end]
                    self.advance(end)
                    return obj, text
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > MAX_ROW_BYTES:
                    return f"{_TOO_BIG} (or not valid JSON: {exc.msg})"
                if not self.eof:
                    self.more()
                    continue
                return f"not valid JSON: {exc.msg}"
            except (ValueError, RecursionError) as exc:
                return f"not valid JSON: {type(exc).__name__}"
            self.more()  # a number may go on in the next chunk


def _read_json(f: BinaryIO, max_text_length: int) -> Iterator[Row | BadRow]:
    reader = _ArrayReader(f)
    rest = "; the rest of the body was not read"
    try:
        first = reader.peek()
        if first is None:
            raise _header_error("the body is empty: a JSON array of row objects is expected")
        if first != "[":
            raise _header_error("expected a JSON array of row objects ([{...}, ...])")
        reader.advance(reader.pos + 1)
        index = 0
        while True:
            c = reader.peek()
            if c == "]" and index == 0:
                reader.advance(reader.pos + 1)
                break
            if c is None:
                yield _bad_at(reader.line, "the array is not closed (the body ends early)", "")
                return
            if index:
                if c == "]":
                    reader.advance(reader.pos + 1)
                    break
                if c != ",":
                    yield _bad_at(reader.line, "expected ',' or ']' after a row" + rest, c)
                    return
                reader.advance(reader.pos + 1)
                c = reader.peek()
            if c is None:
                yield _bad_at(reader.line, "the array is not closed (the body ends early)", "")
                return
            line = reader.line
            got = reader.value()
            if isinstance(got, str):
                yield _bad_at(line, got + rest, reader.buf[reader.pos:reader.pos + 80])
                return
            obj, text = got
            index += 1
            lines = [_Line(line, text, False, False)]
            if not isinstance(obj, dict):
                yield _bad(lines, f"expected a JSON object, got {_json_type(obj)}")
                continue
            values, names, problem = _json_values(obj)
            yield _bad(lines, problem) if problem else _row(lines, values, max_text_length, names)
        if reader.peek() is not None:
            yield _bad_at(reader.line, "unexpected content after the array", "")
    except UnicodeDecodeError:
        yield _bad_at(reader.line, "not valid UTF-8" + rest, "")


def _bad_at(line: int, reason: str, raw: str) -> BadRow:
    return BadRow(line, reason, _printable(raw))


def _json_values(obj: dict[str, object]) -> tuple[dict[str, object], dict[str, str], str | None]:
    """(values by canonical name, the names used, problem): aliases resolved
    and JSON types checked; the values themselves are validated later."""
    values: dict[str, object] = {}
    names: dict[str, str] = {}
    for name, value in obj.items():
        canon = "to" if name in NUMBER_FIELDS else "text" if name in TEXT_FIELDS else name
        if canon not in ("to", "text", KEY_FIELD) and canon not in SENDSMS_OPTIONS:
            return values, names, f"unknown field {_printable(name, 40)!r}; allowed: {_ALLOWED}"
        if canon in names:
            return values, names, f"both {names[canon]!r} and {name!r} given: use one"
        names[canon] = name
        if value is None:
            continue
        if canon == "text":
            if not isinstance(value, str):
                return values, names, f"{name}: must be a string, not {_json_type(value)}"
        elif not isinstance(value, str | int) or (isinstance(value, bool) and canon in _NO_BOOL):
            why = f"must be a string or an integer, not {_json_type(value)}"
            return values, names, f"{name}: {why}"
        values[canon] = value
    return values, names, None


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


# ------------------------------------------------------------- both formats


def _row(
    lines: list[_Line], values: Mapping[str, object], max_text_length: int, shown: dict[str, str]
) -> Row | BadRow:
    """Validate one record's values; `shown` maps to the column names the file used."""

    def name(canon: str) -> str:
        return shown.get(canon, canon).strip() or canon

    number, text = values.get("to"), values.get("text")
    if number is None or number == "":
        return _bad(lines, f"{name('to')}: missing")
    if text is None:
        return _bad(lines, f"{name('text')}: missing")
    try:
        to = normalize_number(number)  # type: ignore[arg-type]
    except ValidationError as exc:
        return _bad(lines, f"{name('to')}: {exc}")
    try:
        checked = check_text(text, max_length=max_text_length)
    except ValidationError as exc:
        return _bad(lines, f"{name('text')}: {exc}")
    try:
        options = check_options({k: v for k, v in values.items() if k in SENDSMS_OPTIONS})
    except ValidationError as exc:
        return _bad(lines, str(exc))
    key, problem = _key(values.get(KEY_FIELD))
    if problem:
        return _bad(lines, f"{name(KEY_FIELD)}: {problem}")
    return Row(lines[0].number, to, checked, options, key)


def _key(value: object) -> tuple[str | None, str | None]:
    """An idempotency key: optional, printable, at most MAX_KEY_LENGTH characters."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, f"must be a string, not {_json_type(value)}"
    key = str(value).strip()
    if not key:
        return None, None
    if len(key) > MAX_KEY_LENGTH:
        return None, f"longer than {MAX_KEY_LENGTH} characters ({len(key)})"
    if not key.isprintable():
        return None, "contains control or invisible characters"
    return key, None


def _format_of(source: object, fmt: str | None) -> Format:
    if fmt is not None:
        if fmt not in ("csv", "jsonl", "json"):
            raise ValidationError(f"unknown format {fmt!r}: use 'csv', 'jsonl' or 'json'",
                                  field="fmt")
        return fmt  # type: ignore[return-value]
    name = source if isinstance(source, str | os.PathLike) else getattr(source, "name", None)
    if not isinstance(name, str | os.PathLike):
        raise ValidationError("cannot tell the format of an unnamed file: pass fmt=", field="fmt")
    ext = os.path.splitext(os.fspath(name))[1].lower()
    if ext not in _EXTENSIONS:
        raise ValidationError(
            f"cannot tell the format from {ext or 'no extension'!r}: "
            f"use {', '.join(_EXTENSIONS)} or pass fmt=",
            field="fmt",
        )
    return _EXTENSIONS[ext]


def read_rows(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    fmt: Format | None = None,
    max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
) -> Iterator[Row | BadRow]:
    """Every record of a campaign file, in order, as `Row` or `BadRow`.

    The format comes from the extension unless `fmt` is given (an unknown one
    raises `ValidationError(field="fmt")` at once). A CSV file without a
    usable header raises `ValidationError(field="header")` when iteration
    starts. A file object must be binary; it is left open.
    """
    kind = _format_of(source, fmt)
    read = {"csv": _read_csv, "jsonl": _read_jsonl, "json": _read_json}[kind]

    def rows() -> Iterator[Row | BadRow]:
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as f:
                yield from read(f, max_text_length)
        else:
            yield from read(source, max_text_length)

    return rows()


def summarize(
    items: Iterable[Row | BadRow], *, segments_of: Callable[[str], int] | None = None
) -> Summary:
    """Counts and billed segments for a stream of rows, in one pass.

    `segments_of` defaults to `dreams_sms.provider.segments.segments` (imported here so
    reading files does not depend on it).
    """
    if segments_of is None:
        from dreams_sms.provider.segments import segments as count_segments

        segments_of = count_segments
    valid = segments = bad_count = 0
    bad: list[BadRow] = []
    for item in items:
        if isinstance(item, Row):
            valid += 1
            segments += segments_of(item.text)
        else:
            bad_count += 1
            if len(bad) < BAD_KEEP:
                bad.append(item)
    return Summary(valid=valid, bad=bad, segments=segments, bad_count=bad_count)
