"""Import Pose Track's second half: once its `extract_poses` job is done, the poses are fetched (a
remote server's downloaded from the job's result archive) and become the strip's pose track, a
Movie Clip with one track per landmark. Main thread; the download runs in the background."""
from __future__ import annotations

import os
import time
import zipfile

import bpy

from . import jobstate, strips
from .client import BAD_RESPONSE, ServerError
from .connection import ServerSettings, client_for
from .job_records import RETRY_S, TRANSIENT, Step, fail, find_record, waiting_for_server
from .pose_file import EXTRACTED_POSES_FILE, load_poses
from .pose_sources import BASE_KEY, TRACK_KEY, pose_track
from .pose_track import create_pose_track
from .result_download import release_server_files
from .session import state

IMPORT_KIND = "extract_poses"


def _fetch_poses(client, job_id: str, output_dir: str, remote: bool, cancelled) -> str:
    """The job's pose file on this machine: where a local server wrote it, or downloaded from a remote one."""
    if not remote:
        path = (client.job(job_id).get("result") or {}).get("poses")
        if not path or not os.path.isfile(path):
            raise ServerError("NO_POSES", f"The pose file of job {job_id} is missing ({path}). Import the pose track again.")
        return path
    archive = client.download(f"/v1/jobs/{job_id}/result/archive", os.path.join(output_dir, "poses.zip"), cancelled=cancelled)
    try:
        with zipfile.ZipFile(archive) as packed:
            packed.extract(EXTRACTED_POSES_FILE, output_dir)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise ServerError(BAD_RESPONSE, f"The result of job {job_id} holds no readable {EXTRACTED_POSES_FILE} ({exc}).") from None
    finally:
        os.remove(archive)
    release_server_files(client, job_id, delete_job=True)  # the poses are here now: free the server's disk
    return os.path.join(output_dir, EXTRACTED_POSES_FILE)


def finish_import(settings: ServerSettings, scene, record) -> bool:
    """Fetch a done import's poses (in the background), then make the clip; True while under way."""
    uid, track = record.uid, state.track(record.uid)
    if time.monotonic() < track.next_poll or state.runner.running((Step.FETCH, uid)):
        return True
    job_id, output_dir, remote = record.job_id, bpy.path.abspath(record.output_dir), record.remote

    def on_done(path, error) -> None:
        scene, record = find_record(uid)
        if record is None or record.placed or record.state != jobstate.DONE:
            return
        if error is None:
            _make_track(scene, record, path)
        elif error.code in TRANSIENT:
            track.next_poll = time.monotonic() + RETRY_S
            waiting_for_server(record, error)
        else:
            fail(scene, record, error, jobstate.FAILED)

    state.runner.start((Step.FETCH, uid), lambda: _fetch_poses(client_for(settings, start=False), job_id, output_dir,
                                                                remote, track.stop.is_set), on_done)
    return True


def _make_track(scene, record, path: str) -> None:
    strip = strips.find_strip(scene, record.source_strip)
    if strip is None or strip.type != "MOVIE":
        fail(scene, record, ServerError("NO_STRIP", f"The strip '{record.source_strip}' is gone; the poses are in {path}."))
        return
    old = bpy.data.movieclips.get(pose_track(strip) or "")
    if old is not None:
        bpy.data.movieclips.remove(old)  # a new import replaces the strip's earlier track
    clip = create_pose_track(load_poses(path), bpy.path.abspath(strip.filepath), f"{strip.name} poses")
    clip[BASE_KEY] = path
    strip[TRACK_KEY] = clip.name
    record.result_strip, record.placed, record.stage = clip.name, True, f"pose track '{clip.name}'"
