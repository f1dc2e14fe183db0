"""A small HTTP/JSON client for the edn server (v1), standard library only and free of bpy, so it
runs in background threads and in tests without Blender.

Every failure becomes a ServerError with a stable `code` (the server's own codes, plus UNREACHABLE,
TIMEOUT and BAD_RESPONSE for problems on the way) and a sentence saying what to do.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

UNREACHABLE = "UNREACHABLE"
TIMEOUT = "TIMEOUT"
BAD_RESPONSE = "BAD_RESPONSE"
BAD_URL = "BAD_URL"
UNAUTHORIZED = "UNAUTHORIZED"
CANCELLED = "CANCELLED"
NOT_READY = "NOT_READY"  # the server's: e.g. a sample asked for before training drew the first

CHUNK = 1 << 20


class ServerError(Exception):
    """A request that did not succeed: `code` is stable, `message` is for people, `status` the HTTP
    status (0 when no answer came), `field` the request field the server blamed, if any."""

    def __init__(self, code: str, message: str, status: int = 0, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class _ProgressReader:
    """A file wrapper that reports bytes read, so an upload streams from disk with progress."""

    def __init__(self, handle, total: int, progress: Callable[[int, int], None] | None,
                 cancelled: Callable[[], bool] | None):
        self._handle, self._total, self._progress, self._cancelled = handle, total, progress, cancelled
        self._done = 0

    def read(self, size: int = -1) -> bytes:
        if self._cancelled is not None and self._cancelled():
            raise ServerError(CANCELLED, "The upload was cancelled.")
        data = self._handle.read(CHUNK if size is None or size < 0 else size)
        self._done += len(data)
        if self._progress is not None and data:
            self._progress(self._done, self._total)
        return data


class EdnClient:
    """One server at `url`, authenticated with `token`. Thread-safe: every call opens its own connection."""

    def __init__(self, url: str, token: str | None, timeout: float = 10.0):
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerError(BAD_URL, f"Server URL {url!r} is not valid: write it like http://127.0.0.1:8765 "
                                            "(http or https, host and port).")
        self.url = url.strip().rstrip("/")
        self.token = (token or "").strip() or None
        self.timeout = timeout
        # No proxies: a local server must never be reached through one, and a remote URL is explicit.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- plumbing --------------------------------------------------------------------------------

    def _headers(self, extra: dict | None = None) -> dict:
        headers = {"Accept": "application/json", **(extra or {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def open(self, method: str, path: str, data=None, headers: dict | None = None, timeout: float | None = None):
        """The raw response (caller closes it); HTTP errors become ServerError with the server's code."""
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=self._headers(headers))
        try:
            return self._opener.open(request, timeout=self.timeout if timeout is None else timeout)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except TimeoutError:
            raise ServerError(TIMEOUT, f"The edn server at {self.url} did not answer within {timeout or self.timeout:g} s. "
                                       "It may be overloaded or stuck: look at its log, or restart it.") from None
        except urllib.error.URLError as exc:
            reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
            raise ServerError(UNREACHABLE, f"Cannot reach the edn server at {self.url} ({reason}). Start it (add-on "
                                           "preferences: Start Server) or check the server URL.") from None
        except (ConnectionError, OSError) as exc:
            raise ServerError(UNREACHABLE, f"The connection to the edn server at {self.url} failed ({exc}). "
                                           "Check that it is running and reachable.") from None

    def _http_error(self, exc: urllib.error.HTTPError) -> ServerError:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        finally:
            exc.close()
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return ServerError(BAD_RESPONSE, f"{self.url} answered HTTP {exc.code} without an edn error body: is this "
                                             "an edn server?", exc.code)
        code, message = str(error.get("code", BAD_RESPONSE)), str(error.get("message", "")).strip()
        if code == UNAUTHORIZED:
            message = (f"The edn server at {self.url} rejected the token. Copy the token from the server's token "
                       "file (its path is in server.json) into the add-on preferences.")
        return ServerError(code, message or f"HTTP {exc.code}", exc.code, error.get("field"))

    def request_json(self, method: str, path: str, body: dict | None = None, timeout: float | None = None) -> dict:
        data, headers = None, {}
        if body is not None:
            data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
        with self.open(method, path, data, headers, timeout) as response:
            raw = response.read()
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            raise ServerError(BAD_RESPONSE, f"{self.url}{path} did not answer JSON: is this an edn server?") from None
        if not isinstance(value, dict):
            raise ServerError(BAD_RESPONSE, f"{self.url}{path} answered {type(value).__name__}, not a JSON object.")
        return value

    # -- the v1 contract -------------------------------------------------------------------------

    def health(self, timeout: float | None = None) -> dict:
        return self.request_json("GET", "/v1/health", timeout=timeout)

    def submit(self, kind: str, params: dict, media: dict | None = None) -> dict:
        body: dict = {"kind": kind, "params": params}
        if media is not None:
            body["input"] = {"media": media}
        return self.request_json("POST", "/v1/jobs", body)

    def job(self, job_id: str) -> dict:
        return self.request_json("GET", f"/v1/jobs/{urllib.parse.quote(job_id)}")

    def cancel(self, job_id: str) -> dict:
        return self.request_json("POST", f"/v1/jobs/{urllib.parse.quote(job_id)}/cancel")

    def sample(self, job_id: str, known_tag: str = "") -> tuple[str, bytes | None] | None:
        """The job's latest progress picture (a train job's held-out sample): (its tag, the PNG), with None
        for the PNG when the tag is still `known_tag` (the body is then left unread); None before the first."""
        try:
            response = self.open("GET", f"/v1/jobs/{urllib.parse.quote(job_id)}/sample", headers={"Accept": "image/png"})
        except ServerError as exc:
            if exc.code == NOT_READY:
                return None
            raise
        with response:
            # the file's ETag (from its mtime and size) tells a new sample without downloading the old one again
            tag = response.headers.get("ETag") or response.headers.get("Last-Modified") or ""
            return (tag, None) if tag and tag == known_tag else (tag, response.read())

    def models(self) -> list[dict]:
        return list(self.request_json("GET", "/v1/models").get("models", []))

    def delete_model(self, name: str) -> dict:
        return self.request_json("DELETE", f"/v1/models/{urllib.parse.quote(name)}")

    def upload(self, path: str | os.PathLike, progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> str:
        """Stream a file as the request body (never read whole into memory); returns its upload_id."""
        path = Path(path)
        size = path.stat().st_size
        query = urllib.parse.urlencode({"filename": path.name})
        with open(path, "rb") as handle:
            reader = _ProgressReader(handle, size, progress, cancelled)
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            with self.open("POST", f"/v1/uploads?{query}", reader, headers, timeout=max(self.timeout, 60.0)) as response:
                reply = json.loads(response.read() or b"{}")
        return str(reply["upload_id"])

    def download(self, path: str, dest: str | os.PathLike, progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> Path:
        """GET `path` into `dest`, through `dest`.part; a .part left by an interrupted download is
        resumed with a Range request (a server that ignores Range makes it start over)."""
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.is_file() else 0
        headers = {"Accept": "*/*", **({"Range": f"bytes={have}-"} if have else {})}
        try:
            response = self.open("GET", path, headers=headers, timeout=max(self.timeout, 60.0))
        except ServerError as exc:
            if exc.status != 416:  # 416: the .part is already complete (or longer than the file)
                raise
            part.unlink(missing_ok=True)
            return self.download(path, dest, progress, cancelled)
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else 0
            with open(part, "ab" if resumed else "wb") as out:
                done = have
                while chunk := response.read(CHUNK):
                    if cancelled is not None and cancelled():
                        raise ServerError(CANCELLED, "The download was cancelled; starting it again resumes it.")
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total or done)
        if total and part.stat().st_size != total:
            raise ServerError(BAD_RESPONSE, f"The download of {path} stopped early ({part.stat().st_size} of {total} "
                                            "bytes). Try again: it resumes where it stopped.")
        os.replace(part, dest)
        return dest
