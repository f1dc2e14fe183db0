"""The embedded sample dancers: a target and a source clip rendered with Blender, so a fresh clone
needs no downloads. Rendered once per spec and kept in the user cache.

Importing this package loads only the standard library (the Blender child imports it too).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ...atomic import atomic_file
from ...config import user_cache_dir
from ...errors import BAD_PARAMS, EdnError
from ...progress import Progress, no_progress
from .spec import RENDER_VERSION, ClipSpec, source_spec, target_spec

__all__ = ["SamplePaths", "render_samples", "sample_clip", "samples_cache_dir", "target_spec", "source_spec", "RENDER_VERSION"]


@dataclasses.dataclass(frozen=True)
class SamplePaths:
    target: Path
    source: Path


def samples_cache_dir() -> Path:
    return user_cache_dir() / "samples"


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One renderer per clip across processes (a test session and `make demo` may race)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; atomic renames still keep clips whole
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sample_clip(spec: ClipSpec, progress: Progress = no_progress, cancelled: Callable[[], bool] | None = None) -> Path:
    """The clip of `spec` from the cache, rendered first if it is not there yet."""
    folder = samples_cache_dir() / spec.cache_key()
    clip = folder / f"{spec.role}.mp4"
    if clip.is_file():
        return clip
    with _exclusive(folder.with_name(f".{folder.name}.lock")):
        if clip.is_file():  # another process finished it while we waited
            return clip
        from .render import render_clip

        started = time.monotonic()
        blender_s = render_clip(spec, clip, progress, cancelled)
        info = {"render_version": RENDER_VERSION, "spec": json.loads(spec.to_json()), "frames": spec.frame_count,
                "blender_seconds": round(blender_s, 2), "seconds_per_frame": round(blender_s / spec.frame_count, 3),
                "total_seconds": round(time.monotonic() - started, 2)}
        with atomic_file(folder / "render.json") as tmp:
            tmp.write_text(json.dumps(info, indent=2))
    return clip


def _copy(clip: Path, out_dir: Path, name: str) -> Path:
    final = out_dir / name
    with atomic_file(final) as tmp:
        shutil.copyfile(clip, tmp)
    return final


def render_samples(out_dir: Path | str | None = None, seed: int = 0, quick: bool = False, progress: Progress = no_progress,
                   cancelled: Callable[[], bool] | None = None) -> SamplePaths:
    """The sample target (~30 s, varied poses) and source (~10 s, a dance) clips; with `quick`,
    2 s clips at 256x256 for tests. Cached per spec; with `out_dir` also copied there as
    target.mp4 and source.mp4."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise EdnError(BAD_PARAMS, f"Sample seed {seed!r} is not a whole number ≥ 0. Pass e.g. --seed 0.")
    if out_dir is not None:
        out_dir = Path(out_dir).expanduser()
        if out_dir.exists() and not out_dir.is_dir():
            raise EdnError(BAD_PARAMS, f"Output {out_dir} is a file, not a folder. Choose a folder for target.mp4 and source.mp4.")
    target = sample_clip(target_spec(seed, quick), progress, cancelled)
    source = sample_clip(source_spec(seed, quick), progress, cancelled)
    if out_dir is not None:
        target, source = _copy(target, out_dir, "target.mp4"), _copy(source, out_dir, "source.mp4")
    return SamplePaths(target=target, source=source)
