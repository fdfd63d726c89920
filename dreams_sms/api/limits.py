"""Request body limits, checked before a route sees the body.

A body that says it is too large (Content-Length) is refused at once. A
small body (every route but the campaign upload) is read here up to its
limit and handed on whole; the upload is counted as it streams, and the
reader stops with `BodyTooLarge` at the limit, which the upload reports
with the rows already queued.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dreams_sms.api.errors import BodyTooLarge, error_response


class BodyLimit:
    """Pure ASGI middleware: `small` bytes for most routes, `large` for `streamed` paths."""

    def __init__(self, app: ASGIApp, *, small: int, large: int,
                 streamed: frozenset[str] = frozenset()):
        self.app = app
        self.small = small
        self.large = large
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        streamed = scope["path"] in self.streamed
        limit = self.large if streamed else self.small
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(scope, receive, send, limit)
            return
        if streamed:
            await self.app(scope, _counted(receive, limit), send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > limit:
                await self._refuse(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(413, BodyTooLarge.code, _too_large(limit), "body",
                                  {"Connection": "close"})
        await response(scope, receive, send)


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit:,} bytes"


def _counted(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(_too_large(limit), field="body")
        return message

    return wrapped


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def wrapped() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped
