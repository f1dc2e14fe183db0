"""A Train Target Model job's latest held-out sample (real | label | generated, on frames it never trained
on) as a thumbnail on its job row, so an artist can stop a training early or let it go on.

While the job runs, the poll asks for the sample every CHECK_S in the background; the server's ETag
tells a new one, so an unchanged sample is not downloaded again. The PNG is stored in the add-on's
cache folder (thread half, no bpy) and loaded into a bpy.utils.previews collection (main thread),
which unregister frees.
"""
from __future__ import annotations

import os
from pathlib import Path

import bpy.utils.previews

from . import jobstate
from .client import EdnClient
from .connection import ServerSettings, client_for
from .job_records import Step
from .preferences import user_dir
from .session import state

CHECK_S = 10.0  # training draws a sample every few minutes: asking this often shows it soon after, for a header or two
_previews: bpy.utils.previews.ImagePreviewCollection | None = None  # made on first use, freed by free()

Fetched = tuple[str, Path | None] | None  # (the sample's tag, the PNG stored anew or None when unchanged); None: no sample yet


def cache_dir() -> Path:
    """Where samples are stored: the extension's own folder (main thread: it asks Blender)."""
    return user_dir() / "cache" / "samples"


def fetch(client: EdnClient, job_id: str, folder: Path, known_tag: str = "") -> Fetched:
    """The thread half, no bpy: store the job's sample as <folder>/<job_id>.png when its tag differs from `known_tag`."""
    got = client.sample(job_id, known_tag)
    if got is None:
        return None
    tag, png = got
    if png is None:
        return tag, None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job_id}.png"
    part = path.with_name(path.name + ".part")
    part.write_bytes(png)
    os.replace(part, path)  # a preview loading meanwhile never reads half a PNG
    return tag, path


def show(uid: str, fetched: Fetched):
    """The main-thread half: a newly stored sample (re)loaded into the collection under the job's uid; its preview."""
    global _previews
    if fetched is None:
        return preview(uid)
    tag, path = fetched
    state.track(uid).sample_tag = tag
    if path is not None:
        if _previews is None:
            _previews = bpy.utils.previews.new()
        if uid in _previews:
            del _previews[uid]
        _previews.load(uid, str(path), "IMAGE", force_reload=True)  # the same file name holds each new sample
    return preview(uid)


def preview(uid: str):
    """The job's sample as a bpy.types.ImagePreview (its icon_id for template_icon), None when none was fetched
    in this session. Headless Blender makes no icons: there its icon_id is 0, but its image loads."""
    return _previews.get(uid) if _previews is not None else None


def refresh(client: EdnClient, uid: str, job_id: str, folder: Path):
    """Fetch, store and show the sample now, on this thread (both halves; the poll runs them apart)."""
    return show(uid, fetch(client, job_id, folder, state.track(uid).sample_tag))


def check_when_due(settings: ServerSettings, uid: str, job: dict, now: float) -> None:
    """From a poll of the job: ask for its sample in the background when it has one and CHECK_S passed,
    and once more as it ends (training draws a last sample). Failures are left for the next check."""
    track = state.track(uid)
    if not job.get("sample") or now < track.sample_due and not jobstate.is_final(str(job.get("state"))):
        return
    track.sample_due = now + CHECK_S
    job_id, folder, known = str(job["id"]), cache_dir(), track.sample_tag
    state.runner.start((Step.SAMPLE, uid), lambda: fetch(client_for(settings, start=False), job_id, folder, known),
                       lambda fetched, error: show(uid, fetched) if error is None else None)


def free() -> None:
    """Release every preview (unregister)."""
    global _previews
    if _previews is not None:
        bpy.utils.previews.remove(_previews)
        _previews = None
