"""`edn serve --root DIR` confines the paths a token holder may name (media, output folders, pose
files); off loopback without --root, only the data dir may be named."""
from __future__ import annotations

import os
import shutil

import pytest
from api_helpers import ServerProcess
from conftest import shared_clip

DANCE = "mediapipe_pose_segmentation_dance.mp4"
PAST_THE_END = {"frame_start": 100_000}  # a request that passes every path check stops at the range check


@pytest.fixture(scope="module")
def rooted(tmp_path_factory):
    base = tmp_path_factory.mktemp("roots")
    allowed, other = base / "allowed", base / "other"
    allowed.mkdir()
    other.mkdir()
    shutil.copy(shared_clip(DANCE), allowed / "clip.mp4")
    shutil.copy(shared_clip(DANCE), other / "clip.mp4")
    os.symlink(other / "clip.mp4", allowed / "link.mp4")
    server = ServerProcess(base / "data", "--root", str(allowed))
    yield server, allowed, other
    server.stop()


def submit(client, path, **params) -> tuple[int, dict]:
    return client.json("POST", "/v1/jobs", {"kind": "extract_poses", "params": params,
                                            "input": {"media": {"path": str(path), **PAST_THE_END}}})


def test_paths_inside_a_root_pass(rooted):
    server, allowed, _ = rooted
    status, reply = submit(server.client(), allowed / "clip.mp4", output_dir=str(allowed / "out"))
    assert status == 422 and reply["error"]["code"] == "BAD_RANGE", reply


@pytest.mark.parametrize("media, output, field", [
    ("other/clip.mp4", None, "input.media.path"),
    ("allowed/link.mp4", None, "input.media.path"),  # a symlink out of the root
    ("allowed/../other/clip.mp4", None, "input.media.path"),
    ("allowed/clip.mp4", "other/out", "params.output_dir"),
])
def test_paths_outside_every_root_are_403(rooted, media, output, field):
    server, allowed, _ = rooted
    base = allowed.parent
    params = {"output_dir": str(base / output)} if output else {}
    status, reply = submit(server.client(), f"{base}/{media}", **params)
    assert status == 403 and reply["error"]["code"] == "PATH_NOT_ALLOWED" and reply["error"]["field"] == field, reply


def test_off_loopback_only_the_data_dir_may_be_named(tmp_path):
    server = ServerProcess(tmp_path / "data", "--host", "0.0.0.0")
    try:
        c = server.client()
        status, reply = submit(c, shared_clip(DANCE))
        assert status == 403 and reply["error"]["code"] == "PATH_NOT_ALLOWED", reply
        status, _, data = c.request("POST", "/v1/uploads?filename=clip.mp4", body=shared_clip(DANCE).read_bytes())
        assert status == 201, data
    finally:
        server.stop()


def test_on_loopback_without_root_nothing_changes(tmp_path):
    server = ServerProcess(tmp_path / "data")
    try:
        status, reply = submit(server.client(), shared_clip(DANCE), output_dir=str(tmp_path / "anywhere"))
        assert status == 422 and reply["error"]["code"] == "BAD_RANGE", reply
    finally:
        server.stop()
