"""The checks every request passes before a route sees it: Host header (against DNS rebinding),
bearer token, and body size. A plain ASGI middleware: cheap enough for hundreds of pollers."""
from __future__ import annotations

import dataclasses
import hmac
import json

from starlette.exceptions import HTTPException

from ..errors import HOST_NOT_ALLOWED, TOO_LARGE, UNAUTHORIZED

PUBLIC_PATHS = frozenset({"/v1/health"})  # answers minimally without a token
UPLOAD_PATH = "/v1/uploads"


@dataclasses.dataclass(frozen=True)
class GuardConfig:
    token: str
    allowed_hosts: frozenset[str]  # lower-case "host:port" values the Host header may carry
    max_body_bytes: int
    max_upload_bytes: int


def allowed_hosts(bind_host: str, port: int, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """Loopback names always; the bound address when it is a real one; plus names the user allowed
    (with their own port, or this server's port when they gave none)."""
    names = {"127.0.0.1", "localhost", "[::1]"}
    if bind_host not in ("0.0.0.0", "::", ""):
        names.add(f"[{bind_host}]" if ":" in bind_host else bind_host)
    hosts = {f"{name}:{port}" for name in names}
    for name in extra:
        name = name.strip().lower()
        has_port = name.rsplit(":", 1)[-1].isdigit() and (not name.startswith("[") or "]:" in name)
        hosts.add(name if has_port else f"{name}:{port}")
    return frozenset(host.lower() for host in hosts)


class BodyTooLarge(HTTPException):
    """Raised while the body is read; an HTTPException so FastAPI's body parsing passes it on unchanged."""

    def __init__(self, limit: int):
        super().__init__(413, _too_large(limit))


async def send_error(send, status: int, code: str, message: str, headers: tuple = ()) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    def __init__(self, app, config: GuardConfig):
        self.app = app
        self.config = config
        self._expected = f"Bearer {config.token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if host not in self.config.allowed_hosts:
            return await send_error(send, 421, HOST_NOT_ALLOWED,
                                    f"Host {host or '(none)'!r} is not served here (this guards against DNS rebinding). "
                                    "Use http://127.0.0.1:PORT, or start the server with --allow-host NAME.")
        auth = headers.get(b"authorization")
        authorized = auth is not None and hmac.compare_digest(auth, self._expected)
        if not authorized and (auth is not None or scope["path"] not in PUBLIC_PATHS):
            return await send_error(send, 401, UNAUTHORIZED,
                                    "Missing or wrong bearer token. Send 'Authorization: Bearer <token>' with the token "
                                    "from the server's token file (its path is in server.json).",
                                    headers=((b"www-authenticate", b"Bearer"),))
        scope.setdefault("state", {})["authorized"] = authorized

        limit = self.config.max_upload_bytes if scope["path"] == UPLOAD_PATH else self.config.max_body_bytes
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await send_error(send, 413, TOO_LARGE, _too_large(limit))
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await send_error(send, 413, TOO_LARGE, _too_large(limit))


def _too_large(limit: int) -> str:
    return (f"The request body is larger than this server's limit of {limit} bytes. Send less, or start the server "
            "with a larger --max-upload (uploads) or --max-body (JSON requests).")
