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
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, WithJsonSchema, field_validator, model_validator

from ..errors import BAD_PARAMS, BAD_RANGE, NO_PERSON, PATH_NOT_ALLOWED, EdnError
from ..media import MAX_FPS, MIN_FPS
from ..progress import Progress
from . import pose_media

log = logging.getLogger("edn.jobs")

# Extra modules whose `register_job_kinds(kinds)` adds kinds (plug-ins; the tests' own kinds).
PLUGINS_ENV = "EDN_JOB_KIND_MODULES"
NAME_MAX_BYTES = 255  # the longest file or folder name common file systems store
PATH_MAX_CHARS = 4096
MAX_FRAME_INDEX = 2**31 - 1
# Every request model: unknown fields are errors, and NaN or infinity is never a number (JSON's 1e999 is inf).
STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    return value


# A path as text. Unlike pydantic's str it admits lone surrogates: Python's spelling of a file name
# that is not valid UTF-8 (JSON "\udcff"), which names a real file like any other.
PathText = Annotated[Any, PlainValidator(_text), WithJsonSchema({"type": "string", "maxLength": PATH_MAX_CHARS})]


def server_path(value: str, what: str) -> str:
    """`value` if it is an absolute path the server can look up, else ValueError saying why (pydantic
    turns it into a BAD_PARAMS answer naming the field)."""
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL byte, which no file name can hold")
    if not os.path.isabs(value):
        raise ValueError(f"{what} {value!r} must be absolute: the server does not share your working directory")
    if len(value) > PATH_MAX_CHARS:
        raise ValueError(f"{what} is {len(value)} characters long; paths are limited to {PATH_MAX_CHARS}")
    for part in Path(value).parts:
        try:
            size = len(os.fsencode(part))
        except UnicodeError:
            raise ValueError(f"{what} holds characters no file name on this system can have") from None
        if size > NAME_MAX_BYTES:
            raise ValueError(f"{what} has a part of {size} bytes; file and folder names hold at most {NAME_MAX_BYTES}")
    return value


def writable_folder(value: str, what: str) -> str:
    """`value` if it is, or can become, a folder this process may write into: checked by writing a
    file in the nearest existing folder (permission bits do not tell root about a read-only mount)."""
    path = Path(server_path(value, what))
    existing = path
    try:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{what} {value} exists and is not a folder; name a folder")
        while not existing.is_dir():
            if existing.exists():
                raise ValueError(f"{what}: {existing} is a file, so no folder can be made under it; choose another folder")
            existing = existing.parent
        fd, probe = tempfile.mkstemp(prefix=".edn-write-check-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"{what}: {existing} is not writable by the server ({exc.strerror or exc}); "
                         "choose a folder it may write to") from None
    return str(path)


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

    model_config = STRICT
    kind: Literal["video", "poses"] = Field("video", description="video: a movie file or image folder; "
                                                                 "poses: an edn pose file, its frames indexed from 0")
    path: PathText | None = Field(None, description="absolute path of a movie file, a folder of images or a pose file")
    upload_id: str | None = Field(None, max_length=64, description="id returned by POST /v1/uploads")
    frame_start: int = Field(0, ge=0, le=MAX_FRAME_INDEX, description="first frame, 0-based, inclusive")
    frame_end: int | None = Field(None, ge=1, le=MAX_FRAME_INDEX, description="last frame, exclusive (default: end of the clip)")
    fps: float | None = Field(None, ge=MIN_FPS, le=MAX_FPS, description="frame rate of an image folder (default 30)")

    @field_validator("path")
    @classmethod
    def _lookup(cls, value: str | None) -> str | None:
        return value if value is None else server_path(value, "path")

    @model_validator(mode="after")
    def _one_source(self) -> MediaRef:
        if (self.path is None) == (self.upload_id is None):
            raise ValueError("give exactly one of `path` (a file on the server) or `upload_id` (from POST /v1/uploads)")
        return self


class JobInput(BaseModel):
    model_config = STRICT
    media: MediaRef | None = None


class JobRequest(BaseModel):
    """The body of POST /v1/jobs."""

    model_config = STRICT
    kind: str = Field(..., max_length=64)
    input: JobInput = Field(default_factory=JobInput)
    params: dict[str, Any] = Field(default_factory=dict)


class OutputParams(BaseModel):
    """Base for kinds that write files: `output_dir` (absolute; created if missing) or the job's own folder."""

    model_config = STRICT
    output_dir: PathText | None = Field(None, description="absolute folder for the outputs (default: <data dir>/jobs/<id>/)")

    @field_validator("output_dir")
    @classmethod
    def _writable(cls, value: str | None) -> str | None:
        return value if value is None else writable_folder(value, "output_dir")


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
    finds its checkpoints in ctx.work_dir. `stages` weights turn per-stage progress into overall progress.
    `sample`, for kinds that draw one: (job, data dir) -> the job's latest progress picture (a PNG), or None yet."""

    name: str
    params: type[BaseModel]
    run: Callable[[JobContext], dict]
    validate: Callable[[ResolvedMedia | None, BaseModel], None] | None = None
    heavy: bool = False
    resumable: bool = False
    needs_media: bool = True
    stages: tuple[tuple[str, float], ...] = ()
    summary: str = ""
    sample: Callable[[dict, Path], Path | None] | None = None


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


def document_requests(openapi: dict, kinds: JobKinds) -> None:
    """Describe POST /v1/jobs' body in `openapi` as one variant per job kind, with that kind's own
    params schema, instead of "kind: any string, params: any object": clients (and the API fuzzer)
    then see every field, range and length the server checks."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    template = "#/components/schemas/{model}"
    variants = []
    for name in kinds.names():
        params = kinds.get(name).params.model_json_schema(ref_template=template)
        schemas.update(params.pop("$defs", {}))
        schemas[f"params_{name}"] = params
        variants.append({"type": "object", "title": name, "additionalProperties": False, "required": ["kind"],
                         "properties": {"kind": {"type": "string", "enum": [name]},
                                        "input": {"$ref": template.format(model="JobInput")},
                                        "params": {"$ref": template.format(model=f"params_{name}")}}})
    schemas["JobRequest"] = {"title": "JobRequest", "description": JobRequest.__doc__, "oneOf": variants}


# -- submit-time checks --------------------------------------------------------------------------

_UNION_MEMBER_TAGS = {"float", "int", "str", "bool", "list", "tuple", "dict"}


def _is_union_tag(part: Any) -> bool:
    """pydantic names the member of a union (`float | tuple[float, ...]`) in an error's location, e.g.
    'constrained-float' or 'tuple[constrained-float, ...]': that is no field of the request."""
    return isinstance(part, str) and ("-" in part or "[" in part or part in _UNION_MEMBER_TAGS)


def field_of(error: ValidationError, prefix: str) -> tuple[str, str]:
    """The first problem of a pydantic error as (dotted field name, message)."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "" and not _is_union_tag(part))
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


# Params naming files or folders on the server, confined like input.media.path when the server has roots.
CONFINED_PARAMS = ("output_dir", "target_poses")


def confine(path: Any, roots: tuple[str, ...], field: str) -> None:
    """PATH_NOT_ALLOWED unless `path`, with its symlinks resolved, lies inside one of `roots`.
    Not a usable path at all: left to the params' own validation, which names the problem."""
    try:
        real = os.path.realpath(server_path(path, field)) if isinstance(path, str) else None
    except (ValueError, OSError):
        real = None
    if real is None:
        return
    if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
        raise FieldError(PATH_NOT_ALLOWED, f"{field} {path} is outside the folders this server may read and write "
                                           f"({', '.join(roots)}). Use a path under one of them, or upload the media; "
                                           "the server's owner can add folders with `edn serve --root DIR`.", field)


def prepare(kinds: JobKinds, request: JobRequest, upload_path: Callable[[str], Path],
            roots: tuple[str, ...] | None = None) -> tuple[JobKind, dict, dict]:
    """Validate a request completely; returns (kind, stored input, stored params) or raises FieldError/EdnError.
    With `roots` (real, absolute folders), every path the request names must lie inside one of them."""
    kind = kinds.get(request.kind)
    if kind is None:
        raise FieldError(BAD_PARAMS, f"Unknown job kind '{request.kind}'; use one of {', '.join(kinds.names())}.", "kind")
    if roots is not None:  # before the params are validated: that looks at the folders they name
        if request.input.media is not None and request.input.media.path is not None:
            confine(request.input.media.path, roots, "input.media.path")
        for name in CONFINED_PARAMS:
            confine(request.params.get(name), roots, f"params.{name}")
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
