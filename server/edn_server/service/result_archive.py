"""A finished job's files for download: its frames as one zip (built once, atomically) or its video."""
from __future__ import annotations

import shutil
import threading
import zipfile
from pathlib import Path

from ..atomic import atomic_file
from ..errors import NOT_FOUND, NOT_READY, EdnError
from ..media import IMAGE_SUFFIXES, list_images
from .job_table import DONE

_build_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _finished(job: dict) -> dict:
    if job["state"] != DONE:
        raise EdnError(NOT_READY, f"Job {job['id']} is {job['state']}, so it has no result to download. "
                                  "Wait until its state is done (poll GET /v1/jobs/{id}).")
    return job["result"] or {}


def video_file(job: dict) -> Path:
    video = _finished(job).get("video")
    if not video or not Path(video).is_file():
        raise EdnError(NOT_FOUND, f"Job {job['id']} ({job['kind']}) has no video result. Download its archive instead.")
    return Path(video)


def _frames(folder: Path, result: dict) -> list[Path]:
    """The job's own frames: those its first_frame/frame_count/frame_pattern name (a user's output
    folder may hold other images), else every image in the folder."""
    pattern, first, count = result.get("frame_pattern"), result.get("first_frame"), result.get("frame_count")
    if not (isinstance(pattern, str) and isinstance(first, int) and isinstance(count, int)):
        return list_images(folder)
    named = (folder / pattern.format(first + i) for i in range(count))
    return [p for p in named if p.is_file() and p.parent == folder]


def _archive_members(job: dict) -> list[tuple[Path, str]]:
    result = _finished(job)
    members: list[tuple[Path, str]] = []
    frames_dir = result.get("frames_dir")
    if frames_dir and Path(frames_dir).is_dir():
        members += [(p, p.name) for p in _frames(Path(frames_dir), result)]
    for name in result.get("files", ()):
        path = Path(name)
        if path.is_file():
            members.append((path, path.name))
    if not members:
        raise EdnError(NOT_FOUND, f"Job {job['id']} ({job['kind']}) left no files to download (they were moved or deleted).")
    return members


def archive_file(job: dict, jobs_dir: Path) -> Path:
    """<jobs dir>/<id>/result.zip with the job's frames (stored, not deflated: PNGs are compressed already).
    Built on first request and reused, so a resumed download reads the very same bytes."""
    target = Path(jobs_dir) / job["id"] / "result.zip"
    with _locks_guard:
        lock = _build_locks.setdefault(job["id"], threading.Lock())
    with lock:
        if target.is_file():
            return target
        members = _archive_members(job)
        with atomic_file(target, suffix=".zip") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for path, arcname in members:
                compress = zipfile.ZIP_STORED if path.suffix.lower() in IMAGE_SUFFIXES + (".mp4", ".npz") else zipfile.ZIP_DEFLATED
                zf.write(path, arcname, compress_type=compress)
        return target


def remove_job_files(jobs_dir: Path, job_id: str) -> int:
    """Delete <jobs dir>/<id> (the job's own folder under the data dir); returns the bytes freed."""
    folder = Path(jobs_dir) / job_id
    if not folder.is_dir():
        return 0
    freed = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    shutil.rmtree(folder, ignore_errors=True)
    with _locks_guard:
        _build_locks.pop(job_id, None)
    return freed
