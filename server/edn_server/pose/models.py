"""Find, download or build the MediaPipe PoseLandmarker bundle (.task) that pose detection runs on.

Resolution order: an explicit file, the `EDN_POSE_MODELS` folder, the user cache (optionally
filled from a local folder first), the official download, a build from registry packages.
Everything that enters the cache is checked to load first, and its sha256 is recorded beside it
so a later change to the cached bytes is noticed and the entry is fetched again.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..atomic import atomic_file
from ..config import user_cache_dir
from ..errors import BAD_PARAMS, POSE_MODEL_INVALID, POSE_MODEL_MISSING, EdnError
from ..names import DOWNLOAD_STAGE
from ..progress import Progress, no_progress

log = logging.getLogger(__name__)

VARIANTS = ("lite", "full", "heavy")
DEFAULT_URL_BASE = "https://storage.googleapis.com/mediapipe-models/pose_landmarker"
DOWNLOAD_TIMEOUT_S = 5.0  # machines without internet must fall through quickly
BUNDLE_MEMBERS = ("pose_detector.tflite", "pose_landmarks_detector.tflite")

# sha256 of the bundles re-built from registry packages (../shared/models/README.md). They are not
# Google's files, so downloads are never checked against them; they only name a cache entry's origin.
REBUNDLED_SHA256 = {
    "lite": "ff1fd8da2f5f264da82bbb762d3f0714cbc41c5d63673fbac0e995b894d7111d",
    "full": "d53f61e407ad58e9fd8e3c0001d5206f5f60ad72902455dacce2a4f1e8ab4b73",
    "heavy": "0422f735ae7aa1e45a2112b27fbeb6540a55fafd37cef3a59300e0221ce6e2ef",
}


def model_filename(variant: str) -> str:
    return f"pose_landmarker_{variant}.task"


def cache_models_dir() -> Path:
    """Shared by every data dir and server on this machine."""
    return user_cache_dir() / "models"


def download_url(variant: str) -> str:
    """The versioned official file (`latest` could change under a recorded checksum)."""
    base = os.environ.get("EDN_POSE_MODEL_URL") or DEFAULT_URL_BASE
    return f"{base.rstrip('/')}/pose_landmarker_{variant}/float16/1/{model_filename(variant)}"


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _record_sha256(path: Path) -> str:
    """`sha256sum -c` reads the sidecar too."""
    digest = sha256_of(path)
    with atomic_file(_sidecar(path)) as tmp:
        tmp.write_text(f"{digest}  {path.name}\n")
    return digest


def _recorded_sha256(path: Path) -> str | None:
    try:
        return _sidecar(path).read_text().split()[0]
    except (OSError, IndexError):
        return None


def load_check(path: str | os.PathLike, label: str | None = None) -> Path:
    """Return `path` if it is a PoseLandmarker bundle that MediaPipe can load; else raise
    POSE_MODEL_INVALID naming `label` (default: the file)."""
    path = Path(path)
    label = label or str(path)
    if not path.is_file():
        raise EdnError(POSE_MODEL_MISSING, f"The pose model {label} does not exist; check the path or run `edn pose model`.")
    try:
        with zipfile.ZipFile(path) as bundle:
            missing = [name for name in BUNDLE_MEMBERS if name not in bundle.namelist()]
    except (OSError, zipfile.BadZipFile):
        missing = list(BUNDLE_MEMBERS)
    if missing:
        raise EdnError(POSE_MODEL_INVALID, f"The pose model {label} is not a PoseLandmarker bundle (a .task zip holding "
                                           f"{' and '.join(BUNDLE_MEMBERS)}); delete it and run `edn pose model` to fetch a good copy.")
    from .landmarker import check_loads

    check_loads(path, label)
    return path


def _cache_entry_ok(path: Path) -> bool:
    """True if the cached file is still what was recorded; a changed or broken entry is removed."""
    if not path.is_file():
        return False
    recorded = _recorded_sha256(path)
    if recorded is not None:
        if sha256_of(path) == recorded:
            return True
        log.warning("%s changed since it was cached (sha256 differs); fetching it again.", path)
    else:  # placed by hand (the error message suggests it): validate once and record it
        try:
            load_check(path)
            _record_sha256(path)
            return True
        except EdnError as exc:
            log.warning("%s", exc.message)
    path.unlink(missing_ok=True)
    _sidecar(path).unlink(missing_ok=True)
    return False


def _commit_to_cache(cached: Path, fill: Callable[[Path], object], label: str) -> Path:
    """Let `fill` write a temp file beside the cache entry; move it in only if it loads."""
    with atomic_file(cached) as tmp:
        fill(tmp)
        load_check(tmp, label=label)
    digest = _record_sha256(cached)
    origin = next((f"the re-bundled {v} file" for v, known in REBUNDLED_SHA256.items() if known == digest), label)
    log.info("cached %s from %s (sha256 %s)", cached, origin, digest)
    return cached


class _SourceUnavailable(Exception):
    """A source could not supply the file; resolution goes on with the next one."""


def _download(url: str, dest: Path, progress: Progress) -> None:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                progress(done, max(total, done), DOWNLOAD_STAGE)
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, refused, bad URL
        raise _SourceUnavailable(f"downloading {url} failed ({getattr(exc, 'reason', exc)})") from exc
    if total and done != total:
        raise _SourceUnavailable(f"downloading {url} stopped after {done} of {total} bytes")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise EdnError(BAD_PARAMS, f"Unknown pose model variant {variant!r}; use one of {', '.join(VARIANTS)}.")


def ensure_pose_model(variant: str = "full", path: str | os.PathLike | None = None, from_dir: str | os.PathLike | None = None,
                      allow_download: bool = True, allow_build: bool = True, progress: Progress | None = None) -> Path:
    """Return the path of a loadable PoseLandmarker bundle for `variant`, fetching it into the
    user cache if needed (see the module docstring for the order)."""
    _check_variant(variant)
    progress = progress or no_progress
    if path is not None:
        return load_check(Path(path).expanduser())
    name = model_filename(variant)
    if os.environ.get("EDN_POSE_MODELS"):
        candidate = Path(os.environ["EDN_POSE_MODELS"]).expanduser() / name
        if candidate.is_file():
            return load_check(candidate, label=f"{candidate} (from EDN_POSE_MODELS)")
    cached = cache_models_dir() / name
    if _cache_entry_ok(cached):
        return cached

    tried: list[str] = []
    if from_dir is not None:
        source = Path(from_dir).expanduser() / name
        if source.is_file():
            return _commit_to_cache(cached, lambda tmp: shutil.copyfile(source, tmp), label=str(source))
        tried.append(f"{source} does not exist")

    if allow_download:
        url = download_url(variant)
        try:
            return _commit_to_cache(cached, lambda tmp: _download(url, tmp, progress), label=f"the download from {url}")
        except _SourceUnavailable as exc:
            tried.append(str(exc))
        except EdnError as exc:  # served something that is not a bundle: keep nothing, try building
            tried.append(exc.message)
        log.warning("%s", tried[-1])
    else:
        tried.append("downloads were disabled")

    if allow_build:
        from .model_build import MEDIAPIPE_WHEEL_SPEC, BuildSources, build_pose_model

        sources = BuildSources.from_env()
        try:
            return _commit_to_cache(cached, lambda tmp: build_pose_model(variant, tmp, sources, progress),
                                    label=f"the bundle built from {sources.wheel or MEDIAPIPE_WHEEL_SPEC}")
        except EdnError as exc:
            if exc.code != POSE_MODEL_MISSING:
                raise
            tried.append(f"building it failed: {exc.message}")
    else:
        tried.append("building was disabled")

    raise EdnError(POSE_MODEL_MISSING,
                   f"No PoseLandmarker '{variant}' model is available ({'; '.join(tried)}): put {name} in {cache_models_dir()}, "
                   f"set EDN_POSE_MODELS to a folder holding it, or run `edn pose model --variant {variant}` "
                   f"on a machine with internet and copy the file over.")
