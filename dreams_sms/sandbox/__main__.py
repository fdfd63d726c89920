"""`python -m dreams_sms.sandbox --port 8025 --admin --error-rate 0.1 ...`

Also `dreams-sms sandbox ...`. A bad option or a busy port is one line on
stderr and exit status 2 or 1, like every other dreams-sms error.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence
from typing import NoReturn

from .faults import SEND_ENDPOINTS, Faults
from .server import run
from .state import SUCCESS_BODIES


def _codes(value: str) -> list[int]:
    return [int(c) for c in value.split(",") if c.strip()]


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block) pointing at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def parser(prog: str = "python -m dreams_sms.sandbox") -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog=prog,
        description="A local Dreams SMS provider: stateful, with fault injection.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8025, help="port (default: 8025)")
    p.add_argument("--admin", action="store_true", help="serve the /_sandbox/ admin API")
    p.add_argument(
        "--admin-token",
        default=None,
        metavar="TOKEN",
        help="require TOKEN in the X-Sandbox-Admin-Token header on every admin route "
        "(default: $DREAMS_SANDBOX_ADMIN_TOKEN; prefer the variable, arguments show in ps)",
    )
    p.add_argument(
        "--success-body",
        choices=SUCCESS_BODIES,
        default="result",
        help="send success body: Result:Success, Success, or <sms_id>:<number> lines",
    )
    p.add_argument("--token-ttl", type=int, default=3600, help="OAuth access token lifetime (s)")
    p.add_argument(
        "--no-seed",
        dest="seed_demo",
        action="store_false",
        help="start empty instead of with the demo account",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for the fault dice")
    p.add_argument("--journal", default=None, metavar="FILE",
                   help="append accepted messages to FILE and reload them at start, so the "
                        "record survives a restart")
    f = p.add_argument_group("faults")
    f.add_argument("--latency-ms", type=float, default=0.0,
                   help="answer time added to every call, in ms (default: 0)")
    f.add_argument("--error-rate", type=float, default=0.0,
                   help="share of calls answered with one of --error-codes (0-1)")
    f.add_argument(
        "--error-codes",
        type=_codes,
        default=[-114, -118],
        help="codes for error faults; write --error-codes=-114,-118 (with '=')",
    )
    f.add_argument("--error-burst", type=int, default=0,
                   help="the next N calls answer with an error code, then the rates apply")
    f.add_argument("--hang-rate", type=float, default=0.0,
                   help="share of calls that hang for --hang-s before answering (0-1)")
    f.add_argument("--hang-s", type=float, default=30.0, help="seconds a hang lasts (default: 30)")
    f.add_argument("--http5xx-rate", type=float, default=0.0,
                   help="share of calls answered HTTP 500, 502 or 503 (0-1)")
    f.add_argument("--garbled-rate", type=float, default=0.0,
                   help="share of calls answered with a body no parser knows (0-1)")
    f.add_argument("--drop-after-accept-rate", type=float, default=0.0,
                   help="share of sends accepted, then the connection dropped (0-1)")
    f.add_argument("--refuse-rate", type=float, default=0.0,
                   help="share of calls answered HTTP 429 with Retry-After (nothing accepted)")
    f.add_argument("--refuse-retry-after", type=float, default=1.0)
    f.add_argument("--partial-rate", type=float, default=0.0,
                   help="share of sends accepted in full but answered with ids for all "
                        "recipients except the last")
    f.add_argument(
        "--fault-endpoints",
        type=_names,
        default=list(SEND_ENDPOINTS),
        help="comma-separated endpoints the fault rates apply to",
    )
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m dreams_sms.sandbox") -> int:
    args = parser(prog).parse_args(argv)
    try:
        faults = Faults(
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            error_codes=args.error_codes,
            error_burst=args.error_burst,
            hang_rate=args.hang_rate,
            hang_s=args.hang_s,
            http5xx_rate=args.http5xx_rate,
            garbled_rate=args.garbled_rate,
            drop_after_accept_rate=args.drop_after_accept_rate,
            refuse_rate=args.refuse_rate,
            refuse_retry_after=args.refuse_retry_after,
            partial_rate=args.partial_rate,
            endpoints=args.fault_endpoints,
        )
    except ValueError as exc:
        print(f"error: invalid fault settings: {exc}", file=sys.stderr)
        return 2
    try:
        run(
            host=args.host,
            port=args.port,
            admin=args.admin,
            faults=faults,
            success_body=args.success_body,
            token_ttl=args.token_ttl,
            seed_demo=args.seed_demo,
            seed=args.seed,
            journal=args.journal,
            admin_token=args.admin_token,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"error: port {args.port} is already in use; pick another with --port",
                  file=sys.stderr)
        else:
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"error: cannot start the sandbox on {args.host}:{args.port}: "
                  f"{exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
