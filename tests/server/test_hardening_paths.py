"""Odd file names against the real server and CLI: names that are not valid UTF-8 are read like
any other file (OpenCV used to segfault on them), and over-long or NUL-carrying paths are a 4xx
with a code, never a 500 or a dead process. Property tests feed arbitrary bytes as file names."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_clip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DANCE = "mediapipe_pose_segmentation_dance.mp4"  # 600x600, 102 frames, 20 fps





def undecodable(folder: Path, name: bytes) -> str:
    """A path under `folder` whose last part is the raw bytes `name` (Python spells them with lone surrogates)."""
    return os.fsdecode(os.fsencode(folder) + b"/" + name)


def frames_folder(folder: str, names: list[bytes], count: int = 3) -> str:
    """The first `count` frames of the dance clip as PNGs under the given raw file names."""
    from edn_server import media

    os.makedirs(folder, exist_ok=True)
    info = media.probe(shared_clip(DANCE))
    for name, frame in zip(names, media.iter_frames(info, 0, count), strict=False):
        media.write_image(undecodable(Path(folder), name), frame)
    return folder


def assert_alive(server, client) -> None:
    assert server.proc.poll() is None, server.log()
    status, reply = client.json("GET", "/v1/jobs")
    assert status == 200, reply


def test_a_movie_whose_name_is_not_utf8_is_read_by_a_server_job(server, client, tmp_path, lite_model):
    movie = undecodable(tmp_path, b"\xff\xfe.mp4")
    shutil.copy(shared_clip(DANCE), movie)
    job = client.wait(client.submit("extract_poses", {"model": "lite"}, {"path": movie, "frame_end": 4}))
    assert job["state"] == "done", job
    assert job["input"]["media"]["path"] == movie, "the path comes back as the same bytes"
    assert job["result"]["frames"] == 4
    assert_alive(server, client)


@pytest.mark.parametrize("bad_frame", [0, 2])
def test_an_image_folder_with_a_frame_named_in_invalid_utf8_is_read(server, client, tmp_path, lite_model, bad_frame):
    names = [b"000.png", b"001.png", b"002.png"]
    names[bad_frame] = b"00%d\xff.png" % bad_frame
    folder = frames_folder(undecodable(tmp_path, b"frames \xe9"), names)
    job = client.wait(client.submit("extract_poses", {"model": "lite"}, {"path": folder}))
    assert job["state"] == "done", job
    assert job["result"]["frames"] == 3
    assert_alive(server, client)


def test_the_cli_extracts_poses_from_a_movie_named_in_invalid_utf8(tmp_path, lite_model):
    movie = undecodable(tmp_path, b"\xff\xfe.mp4")
    shutil.copy(shared_clip(DANCE), movie)
    out = undecodable(tmp_path, b"poses \xff.npz")
    run = subprocess.run([sys.executable, "-m", "edn_server", "pose", "extract", os.fsencode(movie), "-o", os.fsencode(out),
                          "--model", "lite", "--end", "3", "--no-cache"], capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert os.path.isfile(out)


@pytest.mark.parametrize("field, value, code", [
    ("input.media.path", "/tmp/" + "a" * 300 + ".mp4", "BAD_PARAMS"),
    ("input.media.path", "/tmp/\udcff\udcfe-missing.mp4", "MEDIA_NOT_FOUND"),
    ("input.media.path", "/tmp/a\x00b.mp4", "BAD_PARAMS"),
    ("params.output_dir", "/tmp/" + "o" * 300, "BAD_PARAMS"),
    ("params.output_dir", "/tmp/out\x00put", "BAD_PARAMS"),
])
def test_odd_paths_are_a_4xx_that_names_the_field(server, client, field, value, code):
    media = {"path": value if field == "input.media.path" else str(shared_clip(DANCE))}
    params = {"output_dir": value} if field == "params.output_dir" else {}
    status, reply = client.json("POST", "/v1/jobs", {"kind": "extract_poses", "input": {"media": media}, "params": params})
    assert 400 <= status < 500, reply
    assert reply["error"]["code"] == code and reply["error"]["field"] == field, reply
    assert_alive(server, client)


# -- property tests: arbitrary bytes as file and folder names ------------------------------------

NAME_BYTES = st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b".."))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(folder_name=NAME_BYTES, file_name=NAME_BYTES)
def test_any_file_and_folder_name_round_trips_through_media(tmp_path, folder_name, file_name):
    from edn_server import media

    folder = undecodable(tmp_path, b"d" + folder_name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    image = undecodable(Path(folder), file_name + b".png")
    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    media.write_image(image, pixels)
    info = media.probe(folder)
    assert info.kind == "images" and info.size == (6, 4) and info.frame_count == 1
    assert np.array_equal(next(media.iter_frames(info, prefetch=0)), pixels)
    assert len(media.content_hash(folder)) == 64


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=300))
def test_any_missing_path_is_an_edn_error(name):
    from edn_server import media
    from edn_server.errors import EdnError

    with pytest.raises(EdnError) as caught:
        media.probe("/nonexistent-edn/" + name)
    assert caught.value.code in ("MEDIA_NOT_FOUND", "MEDIA_UNREADABLE")
