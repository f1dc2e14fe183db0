"""The HTTP/JSON v1 routes: thin wrappers over the job store, scheduler, uploads and model registry.

Every error answers with one body shape, {"error": {"code", "message", "field"?}}, where `code` is
one of the stable codes in errors.py and `field` names the request field at fault.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sqlite3
import uuid
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException

from .. import errors, registry
from ..media import DISK_ERRNOS, disk_error
from . import result_archive as archives
from .guard import GuardConfig, GuardMiddleware
from .health import device_info, memory_info
from .job_contract import FieldError, JobKinds, JobRequest, document_requests, prepare
from .job_table import FINAL_STATES, STATES, JobStore
from .uploads import Uploads
from .workers import Scheduler

API_VERSION = "1"

_STATUS = {
    errors.MEDIA_NOT_FOUND: 404, errors.MODEL_NOT_FOUND: 404, errors.NOT_FOUND: 404,
    errors.UNAUTHORIZED: 401, errors.NOT_IMPLEMENTED: 501, errors.NOT_READY: 409, errors.TOO_LARGE: 413,
    errors.HOST_NOT_ALLOWED: 421, errors.INTERNAL: 500,
    errors.OUTPUT_UNWRITABLE: 507, errors.PATH_NOT_ALLOWED: 403,  # raised while a request runs, it is the server's own disk that refused
}
_HTTP_CODES = {404: errors.NOT_FOUND, 401: errors.UNAUTHORIZED, 413: errors.TOO_LARGE}


@dataclasses.dataclass
class ServerState:
    data_dir: Path
    store: JobStore
    scheduler: Scheduler
    kinds: JobKinds
    uploads: Uploads
    version: str
    roots: tuple[str, ...] | None = None  # folders media paths and output folders must lie in; None: anywhere

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"


class EdnJSONResponse(JSONResponse):
    """JSON in ASCII: a path whose name is not valid UTF-8 (lone surrogates in Python) travels as
    \\udcXX escapes instead of failing to encode, and comes back to a Python client as the same path.
    A non-finite number (stored before the params were checked) is shown as null, never as invalid JSON."""

    def render(self, content) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_finite(content), ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        return text.encode("ascii")


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def error_response(status: int, code: str, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return EdnJSONResponse({"error": body}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.EdnError)
    async def edn_error(request: Request, exc: errors.EdnError):
        return error_response(_STATUS.get(exc.code, 422), exc.code, exc.message, getattr(exc, "field", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        loc = [str(part) for part in first.get("loc", ())]
        loc = loc[1:] if loc[:1] in (["body"], ["query"], ["path"]) else loc  # where it came from, not a field
        field = ".".join(loc) or None
        return error_response(422, errors.BAD_PARAMS, f"{field or 'The request'} is invalid: {first.get('msg')}.", field)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        code = _HTTP_CODES.get(exc.status_code, errors.BAD_PARAMS)
        message = exc.detail if exc.status_code != 404 else f"There is no route {request.url.path}. See /docs for the API."
        return error_response(exc.status_code, code, str(message), headers=getattr(exc, "headers", None))

    @app.exception_handler(sqlite3.OperationalError)
    async def store_refused(request: Request, exc: sqlite3.OperationalError):
        return error_response(507, errors.OUTPUT_UNWRITABLE, f"The server could not write its job table ({exc}). Free disk "
                                                             "space in its data dir, then try again.")

    @app.exception_handler(OSError)
    async def disk_refused(request: Request, exc: OSError):
        if exc.errno not in DISK_ERRNOS:
            return await unexpected(request, exc)
        return error_response(507, errors.OUTPUT_UNWRITABLE, disk_error(exc).message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        return error_response(500, errors.INTERNAL, f"The server failed unexpectedly ({type(exc).__name__}). "
                                                    "This is a bug in edn: please report it with the server's log.")


def _public_job(job: dict, state: ServerState) -> dict:
    """The job as clients see it; `sample` is the URL of its latest progress picture, once there is one."""
    body = {key: job[key] for key in ("id", "kind", "state", "progress", "stage", "eta_s", "result", "error", "created",
                                      "started", "finished", "attempts", "cancel_requested", "input", "params")}
    body["sample"] = f"/v1/jobs/{job['id']}/sample" if _sample_path(job, state) is not None else None
    return body


def _sample_path(job: dict, state: ServerState) -> Path | None:
    kind = state.kinds.get(job["kind"])
    return kind.sample(job, state.data_dir) if kind is not None and kind.sample is not None else None


def create_app(state: ServerState, guard: GuardConfig, lifespan=None) -> FastAPI:
    app = FastAPI(title="edn server", version=state.version, summary="Everybody Dance Now motion transfer jobs",
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json", lifespan=lifespan,
                  default_response_class=EdnJSONResponse)
    app.add_middleware(GuardMiddleware, config=guard)
    _install_error_handlers(app)
    default_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            document_requests(default_openapi(), state.kinds)
        return app.openapi_schema

    app.openapi = openapi

    def job_or_404(job_id: str) -> dict:
        job = state.store.get(job_id)
        if job is None:
            raise errors.EdnError(errors.NOT_FOUND, f"No job {job_id!r} on this server (list jobs with GET /v1/jobs).")
        return job

    @app.get("/v1/health", tags=["server"])
    async def health(request: Request):
        """Without a token: only that the server is up. With one: version, device, memory and job counts."""
        problems = state.scheduler.problems()
        body: dict = {"status": "degraded" if problems else "ok", "api_version": API_VERSION}
        if request.scope.get("state", {}).get("authorized") and problems:
            body["problems"] = problems
        if request.scope.get("state", {}).get("authorized"):
            body.update(version=state.version, pid=os.getpid(), device=await run_in_threadpool(device_info, 0.2),
                        memory=memory_info(), jobs=state.store.counts(), kinds=state.kinds.names())
        return body

    @app.post("/v1/jobs", status_code=202, tags=["jobs"])
    def submit_job(request: JobRequest):
        """Check the request completely (media readable, range inside the clip, params valid) and queue it."""
        kind, stored_input, params = prepare(state.kinds, request, state.uploads.path, state.roots)
        job_id = state.store.insert(kind.name, stored_input, params, heavy=kind.heavy, resumable=kind.resumable)
        state.scheduler.notify()
        return EdnJSONResponse({"id": job_id, "state": "queued"}, status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})

    @app.get("/v1/jobs", tags=["jobs"])
    async def list_jobs(state_filter: str | None = Query(None, alias="state", description="comma-separated states"),
                        kind: str | None = None, limit: int = Query(100, ge=1, le=1000)):
        """Jobs, newest first."""
        states = tuple(s.strip() for s in state_filter.split(",") if s.strip()) if state_filter else ()
        unknown = [s for s in states if s not in STATES]
        if unknown:
            raise FieldError(errors.BAD_PARAMS, f"Unknown state {unknown[0]!r}; use one of {', '.join(STATES)}.", "state")
        return EdnJSONResponse({"jobs": [_public_job(job, state) for job in state.store.list_jobs(states, kind, limit)]})

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    async def get_job(job_id: str):
        """The job's state, progress 0..1, stage, ETA, and its result or error. Pollers hit this route
        most, so it answers a ready JSONResponse and skips FastAPI's response encoding."""
        return EdnJSONResponse(_public_job(job_or_404(job_id), state))

    @app.post("/v1/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel_job(job_id: str):
        """A queued job ends at once; a running one stops within about a second (watch its state)."""
        job_or_404(job_id)
        state.scheduler.cancel(job_id)
        return _public_job(job_or_404(job_id), state)

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"])
    def delete_job(job_id: str):
        """Forget an ended job and free its files under the data dir (its frames, poses and archive).
        Files it wrote to an output folder it named stay: they are the user's. Uploads are separate."""
        job = job_or_404(job_id)
        if state.store.delete(job_id) not in FINAL_STATES:
            raise errors.EdnError(errors.NOT_READY, f"Job {job_id} is {job['state']}: cancel it first (POST "
                                                    f"/v1/jobs/{job_id}/cancel), then delete it once it has ended.")
        return {"deleted": job_id, "freed_bytes": archives.remove_job_files(state.jobs_dir, job_id)}

    @app.get("/v1/jobs/{job_id}/result/archive", tags=["results"], response_class=FileResponse)
    def result_archive(job_id: str):
        """The job's output frames (or files) as one zip; supports Range requests for resuming."""
        job = job_or_404(job_id)
        path = archives.archive_file(job, state.jobs_dir)
        return FileResponse(path, media_type="application/zip", filename=f"{job['kind']}-{job_id}.zip")

    @app.get("/v1/jobs/{job_id}/result/video", tags=["results"], response_class=FileResponse)
    def result_video(job_id: str):
        """The job's mp4; supports Range requests for resuming."""
        job = job_or_404(job_id)
        path = archives.video_file(job)
        return FileResponse(path, media_type="video/mp4", filename=f"{job['kind']}-{job_id}.mp4")

    @app.get("/v1/jobs/{job_id}/sample", tags=["results"], response_class=FileResponse)
    def job_sample(job_id: str):
        """The job's latest progress picture as a PNG: for a train job, the held-out sample (real | label |
        generated on frames never trained on), refreshed every few minutes. 404 NOT_READY before the first."""
        job = job_or_404(job_id)
        kind = state.kinds.get(job["kind"])
        if kind is None or kind.sample is None:
            raise errors.EdnError(errors.NOT_FOUND, f"Job {job_id} is a {job['kind']} job, which draws no sample; train jobs do.")
        path = _sample_path(job, state)
        if path is None:
            return error_response(404, errors.NOT_READY, f"Job {job_id} ({job['state']}) has no sample yet: training draws "
                                                         "the first after its first step. Ask again in a little while.")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/v1/uploads", status_code=201, tags=["uploads"], openapi_extra={
        "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload(request: Request,
                     filename: str | None = Query(None, description="original file name (keeps its extension; .zip = image sequence)")):
        """Stream a movie file, or an image sequence as a zip of its frames (unpacked on arrival; the reply
        says how many), as the raw request body; use the returned upload_id as input.media.upload_id."""
        return await state.uploads.receive(uuid.uuid4().hex, filename, request.stream())

    @app.delete("/v1/uploads/{upload_id}", tags=["uploads"])
    def delete_upload(upload_id: str):
        state.uploads.delete(upload_id)
        return {"deleted": upload_id}

    @app.get("/v1/models", tags=["models"])
    def list_models():
        """Trained targets on this server."""
        return {"models": registry.list_models(state.data_dir)}

    @app.delete("/v1/models/{name}", tags=["models"])
    def delete_model(name: str):
        registry.delete_model(state.data_dir, name)
        return {"deleted": name}

    return app
