"""A fuzz run over every input boundary: any input gives a result or one of our
errors (DreamsError), never another exception.

    python bench/fuzz.py --seconds 60

Targets: the provider response parsers (random bytes and near-miss bodies),
number normalisation, text checks, segment counting and campaign files (random
CSV and JSON Lines with broken quoting, mixed encodings and huge rows). Exits 1
and prints the input on the first unexpected exception.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable

from dreams_sms.errors import DreamsError
from dreams_sms.ops import bulkfile
from dreams_sms.provider import responses, segments, validate

PIECES = ["-1", "-113", "999", "Result", "Success", ":", "\n", " ", "<usersender>",
          "<sender>", "</sender>", "<status>Active</status>", "{", "}", '"balance"', "0",
          "1e309", "NaN", "\ufeff", "٠١٢", "<!DOCTYPE x [<!ENTITY a 'b'>]>", "&a;", "\x00"]
NUMBER_PIECES = ["05", "5", "+966", "00966", "966", "0", "1", "9", "٥", "۵", " ", "-", "(",
                 ")", ".", "+", "x", "\u200f", "1234567", "55"]
CSV_PIECES = ["number,text\n", "to,message,key\n", "0551234567", ",", '"', '""', "\n",
              "\r\n", "hello", "مرحبا", "\xff\xfe", "x" * 70_000, "is_calander", "\x00"]


def _mix(rnd: random.Random, pieces: list[str], n: int) -> str:
    return "".join(rnd.choice(pieces) for _ in range(rnd.randrange(n)))


def _bytes(rnd: random.Random) -> bytes:
    if rnd.random() < 0.5:
        return rnd.randbytes(rnd.randrange(64))
    return _mix(rnd, PIECES, 12).encode("utf-8", "surrogatepass")


def parsers(rnd: random.Random) -> None:
    body = _bytes(rnd)
    endpoint = rnd.choice(["sendsms", "sendsms_multi", "chk_balance", "usersender",
                           "senderstatus", "chk_user", "Register", "newsender"])
    parse = {"chk_balance": responses.parse_balance, "usersender": responses.parse_senders,
             "senderstatus": responses.parse_sender_status, "sendsms": responses.parse_send,
             "sendsms_multi": responses.parse_send}.get(endpoint, responses.parse_code)
    parse(endpoint, body if rnd.random() < 0.5 else body.decode("utf-8", "replace"))


def numbers(rnd: random.Random) -> None:
    raw: object = _mix(rnd, NUMBER_PIECES, 8)
    if rnd.random() < 0.1:
        raw = rnd.choice([None, 5.5, b"0551234567", rnd.randrange(10**15), True])
    out = validate.normalize_number(raw)  # type: ignore[arg-type]
    assert out.startswith("9665") and len(out) == 12, out
    assert validate.normalize_number(out) == out


def texts(rnd: random.Random) -> None:
    text = "".join(chr(rnd.randrange(0x110000)) for _ in range(rnd.randrange(300)))
    n = segments.segments(text)
    assert n >= (1 if text else 0)
    validate.check_text(text)


def files(rnd: random.Random) -> None:
    data = _mix(rnd, CSV_PIECES, 30).encode("utf-8", "surrogatepass")
    if rnd.random() < 0.3:
        data = data.replace(b"\xc3\xbf", rnd.randbytes(2))
    fmt = rnd.choice(["csv", "jsonl"])
    for item in bulkfile.read_rows(io.BytesIO(data), fmt=fmt):
        assert isinstance(item, bulkfile.Row | bulkfile.BadRow)


TARGETS: dict[str, Callable[[random.Random], None]] = {
    "parsers": parsers, "numbers": numbers, "texts": texts, "files": files}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="time per target")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"fuzz seed {seed}, {args.seconds:g}s per target")
    for name, target in TARGETS.items():
        rnd = random.Random(f"{seed}-{name}")
        outcomes: Counter[str] = Counter()
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            state = rnd.getstate()
            try:
                target(rnd)
                outcomes["ok"] += 1
            except DreamsError as exc:
                outcomes[type(exc).__name__] += 1
            except Exception:
                rnd.setstate(state)
                print(f"{name}: unexpected exception (seed {seed}); input follows")
                traceback.print_exc()
                return 1
        total = sum(outcomes.values())
        print(f"{name:8} {total:>8} inputs  " + ", ".join(
            f"{k} {v}" for k, v in outcomes.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
