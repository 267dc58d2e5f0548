"""The last resort: an exception no handler knows is logged with its traceback and answered as an RFC 9457
problem (500), and the connection stays open.

Starlette's ``ServerErrorMiddleware`` answers such an exception and then re-raises it, so that the server sees
it; uvicorn then closes the kept-alive connection, and every client of a pool pays a reconnect for one bad
request. This middleware sits inside it (``add_middleware`` puts user middleware there) and does not re-raise.
An exception after the response has started cannot be answered: that one still goes up, and the server
closes the connection, which is then the only honest end of a half-sent answer.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herald.web.api.problems import problem

log = logging.getLogger("herald.web.api.problems")


class AnswerUnexpected:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = problem(
                500, "Internal server error", "an unexpected error occurred", instance=scope.get("path")
            )
            await response(scope, receive, send)
