"""A finished job's frames as files on this machine, ready for an image strip. No bpy.

A local server wrote them where we asked (result["frames_dir"]); a remote one is asked for its
result archive, which is downloaded (resumably) and unpacked into the job's output folder.
"""
from __future__ import annotations

import os
import shutil
import urllib.parse
import zipfile
from collections.abc import Callable
from pathlib import Path

from .client import BAD_RESPONSE, EdnClient, ServerError
from .jobstate import frame_files

NO_FRAMES = "NO_FRAMES"


def local_frames(result: dict) -> tuple[Path, list[str]]:
    """The frames folder a job reported and its image files in order; NO_FRAMES if missing or empty."""
    folder = Path(str((result or {}).get("frames_dir") or ""))
    names = frame_files(os.listdir(folder)) if folder.is_dir() and str(folder) != "." else []
    if not names:
        raise ServerError(NO_FRAMES, f"The job's frames are not in {folder} (moved or deleted?). Run the job again.")
    return folder, names


def _safe_extract(archive: Path, dest: Path) -> None:
    """Unpack into dest.tmp then rename, refusing members that would land outside it."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                name = member.filename
                if member.is_dir():
                    continue
                target = (tmp / name).resolve()
                if tmp.resolve() not in target.parents:
                    raise ServerError(BAD_RESPONSE, f"The result archive holds an unsafe path {name!r}; not unpacked.")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ServerError(BAD_RESPONSE, f"The result archive {archive} could not be unpacked ({exc}). Fetch it again.") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def download_frames(client: EdnClient, job_id: str, output_dir: str | os.PathLike,
                    progress: Callable[[int, int], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> tuple[Path, list[str]]:
    """Fetch a remote job's archive into <output_dir>/result.zip and unpack it into <output_dir>/frames."""
    output_dir = Path(output_dir)
    frames = output_dir / "frames"
    if frames.is_dir() and frame_files(os.listdir(frames)):
        return frames, frame_files(os.listdir(frames))  # fetched before (e.g. the .blend was reopened)
    archive = client.download(f"/v1/jobs/{urllib.parse.quote(job_id)}/result/archive", output_dir / "result.zip",
                              progress=progress, cancelled=cancelled)
    _safe_extract(archive, frames)
    archive.unlink(missing_ok=True)
    names = frame_files(os.listdir(frames))
    if not names:
        raise ServerError(NO_FRAMES, f"Job {job_id}'s result holds no image frames.")
    return frames, names


def release_server_files(client: EdnClient, job_id: str, delete_job: bool) -> list[str]:
    """Free a remote server's disk once a job no longer needs it: the media we uploaded for it and,
    when its frames are safely here (`delete_job`), the job and its files. Best effort: a failure
    only leaves files on the server. Returns the routes that were deleted."""
    try:
        media = (client.job(job_id).get("input") or {}).get("media") or {}
    except ServerError:
        return []
    routes = [f"/v1/jobs/{urllib.parse.quote(job_id)}"] if delete_job else []
    if media.get("upload_id"):
        routes.append(f"/v1/uploads/{urllib.parse.quote(str(media['upload_id']))}")
    deleted = []
    for route in routes:
        try:
            client.request_json("DELETE", route)
            deleted.append(route)
        except ServerError:
            pass
    return deleted
