"""What a job is: the request shape, the registry of job kinds, and the context a kind's `run` gets.

A job kind is one `JobKind` value: a pydantic params model, an optional submit-time `validate`,
and a `run(ctx)` that returns the result dict. Adding `train` or `transfer` means writing those
and registering the kind; the scheduler, store and API need no change.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import BAD_PARAMS, BAD_RANGE, NO_PERSON, EdnError
from ..progress import Progress
from . import pose_media

log = logging.getLogger("edn.jobs")

# Extra modules whose `register_job_kinds(kinds)` adds kinds (plug-ins; the tests' own kinds).
PLUGINS_ENV = "EDN_JOB_KIND_MODULES"


class FieldError(EdnError):
    """An EdnError about one request field, so the API can name it (e.g. "params.scale")."""

    def __init__(self, code: str, message: str, field: str):
        super().__init__(code, message)
        self.field = field

    def to_dict(self) -> dict:
        return {**super().to_dict(), "field": self.field}


class MediaRef(BaseModel):
    """A movie file or image folder on the server's disk (`path`), or an earlier upload (`upload_id`);
    with kind `poses`, an edn pose file (.npz) whose poses are used instead of detecting any."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["video", "poses"] = Field("video", description="video: a movie file or image folder; "
                                                                 "poses: an edn pose file, its frames indexed from 0")
    path: str | None = Field(None, description="absolute path of a movie file or a folder of images")
    upload_id: str | None = Field(None, description="id returned by POST /v1/uploads")
    frame_start: int = Field(0, ge=0, description="first frame, 0-based, inclusive")
    frame_end: int | None = Field(None, ge=1, description="last frame, exclusive (default: end of the clip)")
    fps: float | None = Field(None, gt=0, description="frame rate of an image folder (default 30)")

    @model_validator(mode="after")
    def _one_source(self) -> MediaRef:
        if (self.path is None) == (self.upload_id is None):
            raise ValueError("give exactly one of `path` (a file on the server) or `upload_id` (from POST /v1/uploads)")
        if self.path is not None and not os.path.isabs(self.path):
            raise ValueError(f"path {self.path!r} must be absolute: the server does not share your working directory")
        return self


class JobInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    media: MediaRef | None = None


class JobRequest(BaseModel):
    """The body of POST /v1/jobs."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    input: JobInput = Field(default_factory=JobInput)
    params: dict[str, Any] = Field(default_factory=dict)


class OutputParams(BaseModel):
    """Base for kinds that write files: `output_dir` (absolute; created if missing) or the job's own folder."""

    model_config = ConfigDict(extra="forbid")
    output_dir: str | None = Field(None, description="absolute folder for the outputs (default: <data dir>/jobs/<id>/)")

    @field_validator("output_dir")
    @classmethod
    def _writable(cls, value: str | None) -> str | None:
        if value is None:
            return value
        path = Path(value)
        if not path.is_absolute():
            raise ValueError(f"{value!r} must be an absolute path")
        if path.exists() and not path.is_dir():
            raise ValueError(f"{value} exists and is not a folder; name a folder")
        existing = path
        while not existing.exists():
            existing = existing.parent
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"{existing} is not writable by the server; choose a folder it may write to")
        return str(path)


@dataclasses.dataclass(frozen=True)
class ResolvedMedia:
    """A checked media reference: the file exists, opens, and the frame range lies inside it."""

    path: Path
    start: int
    end: int
    fps: float | None  # an override for image folders; None = the clip's own rate
    info: Any  # media.MediaInfo

    @property
    def is_poses(self) -> bool:
        return self.info.kind == "poses"

    def to_dict(self) -> dict:
        stored = {"path": str(self.path), "frame_start": self.start, "frame_end": self.end, "fps": self.fps,
                  "frames": self.end - self.start, "size": list(self.info.size), "clip_fps": self.info.fps}
        return {**stored, "kind": "poses"} if self.is_poses else stored


@dataclasses.dataclass
class JobContext:
    """What a running job gets. `progress` also raises CANCELLED once a cancel was asked for, so
    library code that reports progress per frame stops within a frame without knowing about jobs."""

    job_id: str
    params: BaseModel
    media: ResolvedMedia | None
    work_dir: Path  # <data dir>/jobs/<id>/: kept across attempts, for checkpoints of resumable kinds
    data_dir: Path
    attempt: int
    progress: Progress
    cancelled: Callable[[], bool]

    @property
    def output_dir(self) -> Path:
        named = getattr(self.params, "output_dir", None)
        return Path(named) if named else self.work_dir


@dataclasses.dataclass(frozen=True)
class JobKind:
    """One kind of job. `heavy` kinds (GPU work) run one at a time; light ones beside them.
    A `resumable` kind is queued again after a crash instead of ending `interrupted`; its `run`
    finds its checkpoints in ctx.work_dir. `stages` weights turn per-stage progress into overall progress."""

    name: str
    params: type[BaseModel]
    run: Callable[[JobContext], dict]
    validate: Callable[[ResolvedMedia | None, BaseModel], None] | None = None
    heavy: bool = False
    resumable: bool = False
    needs_media: bool = True
    stages: tuple[tuple[str, float], ...] = ()
    summary: str = ""


class JobKinds:
    """The registry of job kinds this server runs."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def register(self, kind: JobKind) -> None:
        self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def load_plugins(self, spec: str | None = None) -> None:
        """Import each module named in EDN_JOB_KIND_MODULES (comma-separated) and let it register kinds."""
        spec = os.environ.get(PLUGINS_ENV, "") if spec is None else spec
        for name in filter(None, (part.strip() for part in spec.split(","))):
            try:
                importlib.import_module(name).register_job_kinds(self)
            except (ImportError, AttributeError) as exc:
                raise EdnError(BAD_PARAMS, f"Job kind plug-in {name!r} (from {PLUGINS_ENV}) could not be loaded: {exc}. "
                                           "Put it on PYTHONPATH with a register_job_kinds(kinds) function, "
                                           f"or unset {PLUGINS_ENV}.") from exc
            log.warning("loaded job kinds from plug-in module %s", name)


# -- submit-time checks --------------------------------------------------------------------------

def field_of(error: ValidationError, prefix: str) -> tuple[str, str]:
    """The first problem of a pydantic error as (dotted field name, message)."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
    return field, first["msg"]


def parse_params(kind: JobKind, params: dict) -> BaseModel:
    try:
        return kind.params.model_validate(params)
    except ValidationError as exc:
        field, message = field_of(exc, "params")
        raise FieldError(BAD_PARAMS, f"Parameter {field} is invalid: {message}.", field) from exc


def resolve_media(ref: MediaRef, upload_path: Callable[[str], Path]) -> ResolvedMedia:
    """Check a media reference now, so a missing or unreadable file is answered at submit time."""
    from .. import media

    path = upload_path(ref.upload_id) if ref.upload_id is not None else Path(ref.path)
    field = "input.media.upload_id" if ref.upload_id is not None else "input.media.path"
    try:
        info = pose_media.probe_poses(path) if ref.kind == "poses" else media.probe(path, fps=ref.fps)
    except EdnError as exc:
        raise FieldError(exc.code, exc.message, field) from exc
    try:
        start, end = _check_range(info, ref.frame_start, ref.frame_end)
    except EdnError as exc:
        raise FieldError(exc.code, exc.message, field if exc.code == NO_PERSON else "input.media.frame_end") from exc
    return ResolvedMedia(path=path, start=start, end=end, fps=ref.fps, info=info)


def _check_range(info, start: int, end: int | None) -> tuple[int, int]:
    from .. import media

    if info.kind == "poses":
        return pose_media.check_pose_range(info.path, info.frame_count, start, end)
    try:
        return media.check_range(info, start, end)
    except EdnError as exc:
        raise EdnError(BAD_RANGE, exc.message) from exc


def media_from_stored(stored: dict | None) -> ResolvedMedia | None:
    """Re-check a stored media reference when the job starts (the file may have changed meanwhile)."""
    if not stored:
        return None
    from .. import media

    poses = stored.get("kind") == "poses"
    info = pose_media.probe_poses(stored["path"]) if poses else media.probe(stored["path"], fps=stored.get("fps"))
    start, end = _check_range(info, stored["frame_start"], stored["frame_end"])
    return ResolvedMedia(path=Path(stored["path"]), start=start, end=end, fps=stored.get("fps"), info=info)


def prepare(kinds: JobKinds, request: JobRequest, upload_path: Callable[[str], Path]) -> tuple[JobKind, dict, dict]:
    """Validate a request completely; returns (kind, stored input, stored params) or raises FieldError/EdnError."""
    kind = kinds.get(request.kind)
    if kind is None:
        raise FieldError(BAD_PARAMS, f"Unknown job kind '{request.kind}'; use one of {', '.join(kinds.names())}.", "kind")
    params = parse_params(kind, request.params)
    media = None
    if request.input.media is not None:
        media = resolve_media(request.input.media, upload_path)
    elif kind.needs_media:
        raise FieldError(BAD_PARAMS, f"Job kind '{kind.name}' needs input.media: a movie file or image folder "
                                     "(`path`) or an upload (`upload_id`).", "input.media")
    if kind.validate is not None:
        kind.validate(media, params)
    stored_input: dict = {"media": media.to_dict()} if media is not None else {}
    if request.input.media is not None and request.input.media.upload_id:
        stored_input["media"]["upload_id"] = request.input.media.upload_id
    return kind, stored_input, params.model_dump(mode="json")
