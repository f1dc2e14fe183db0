"""The add-on keeps copies of a few server facts, since it may import nothing outside Blender's Python:
the job states, the image suffixes a folder is read by and the order its images are read in, the pose
landmarks, the pose file's keys and types, its media kind and the extracted file's name. Each copy is
pinned here to the server's own, so a change on either side fails until both agree."""
from __future__ import annotations

import sys
from pathlib import Path

from addon_helpers import ROOT, pure

sys.path.insert(0, str(ROOT / "server"))  # this checkout's server; `make test-addon` sets no PYTHONPATH

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from edn_server import media, names  # noqa: E402
from edn_server.pose import landmarks  # noqa: E402
from edn_server.pose.sequence import PoseSequence  # noqa: E402
from edn_server.service import job_table, pose_media  # noqa: E402

js = pure("jobstate")
pf = pure("pose_file")

# No two names tie in either order (a tie would leave the order to the file system); they mix numbers
# that sort differently as text, letter case, every suffix in upper and lower case, and non-images.
NAMES = ("shot_10.png", "shot_9.png", "shot_100.JPG", "Shot_11.tif", "shot_2.webp", "b1.exr", "a20.jpeg", "a3.bmp",
         "clip.tiff", "z0.PNG", "Z1.Jpg", "notes.txt", "frame.png.txt", ".png", "cover.gif", "scan.TIFF")


def test_job_states_are_the_servers():
    assert js.SERVER_STATES == job_table.STATES
    assert set(js.FINAL) == set(job_table.FINAL_STATES) | {js.NOT_SENT}
    assert set(js.ACTIVE) == set(job_table.STATES) - set(job_table.FINAL_STATES) | {js.SUBMITTING}
    assert {js.SUBMITTING, js.NOT_SENT}.isdisjoint(job_table.STATES)  # the add-on's own never clash with the server's


def test_image_suffixes_are_the_servers():
    assert js.IMAGE_SUFFIXES == media.IMAGE_SUFFIXES


def test_a_folder_of_images_is_read_in_the_servers_order(tmp_path):
    for name in NAMES:
        (tmp_path / name).write_bytes(b"")
    server_order = [path.name for path in media.list_images(tmp_path)]
    assert len(server_order) >= 12  # most of the names are images
    assert js.server_image_order(list(NAMES)) == server_order
    assert js.server_image_order(list(reversed(NAMES))) == server_order


def test_the_sort_key_is_the_servers():
    for name in NAMES:
        assert js.natural_key(name) == media._natural_key(Path(name)), name


def test_landmarks_are_the_servers():
    assert pf.LANDMARK_NAMES == landmarks.NAMES


def test_the_pose_media_kind_and_the_extracted_file_name_are_the_servers():
    assert pf.POSES_MEDIA_KIND == pose_media.POSES_KIND
    assert pf.EXTRACTED_POSES_FILE == names.POSES_FILE


def test_the_pose_file_is_the_servers_byte_for_byte_in_keys_and_types(tmp_path):
    rng = np.random.default_rng(3)
    keypoints = rng.uniform(0, 500, (5, 33, 4)).astype(np.float32)
    detected, interpolated = np.array([1, 1, 0, 1, 0], bool), np.array([0, 0, 1, 0, 0], bool)
    ours = pf.save_poses(pf.PoseData(keypoints, detected, 29.97, (640, 480), interpolated, 12), tmp_path / "addon.npz")
    theirs = PoseSequence(keypoints, detected, 29.97, (640, 480), interpolated, 12).save(tmp_path / "server.npz")
    with np.load(ours) as a, np.load(theirs) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape and np.array_equal(a[key], b[key]), key
    loaded = pf.load_poses(theirs)
    assert loaded.size == (640, 480) and loaded.frame_start == 12 and np.array_equal(loaded.interpolated, interpolated)


def test_error_codes_and_the_recorded_python_file_are_the_servers():
    from edn_server import config, errors

    messages, launcher = pure("messages"), pure("launcher")
    for name in ("MODEL_EXISTS", "MODEL_NOT_FOUND", "NO_PERSON", "BAD_PARAMS", "BAD_CHECKPOINT", "UNDER_TRAINED"):
        assert getattr(messages, name) == getattr(errors, name), name
    assert launcher.SERVER_PYTHON_FILE == config.SERVER_PYTHON_FILE


def test_model_modes_and_the_sample_code_are_the_servers():
    from edn_server import errors

    assert pure("model_list").FULL_FRAME == names.FULL_FRAME
    assert pure("client").NOT_READY == errors.NOT_READY


def test_transfer_outputs_are_the_servers():
    import typing

    pytest.importorskip("pydantic")  # the job contract's; the bpy 4.2 venv lacks it, the project's .venv has it
    from edn_server.service.job_kinds.transfer import TransferParams

    assert (js.COMPOSITE, js.PERSON_ALPHA) == typing.get_args(TransferParams.model_fields["output"].annotation)


def test_a_python_recorded_by_the_server_is_found_by_the_add_on(tmp_path):
    from edn_server import config

    launcher = pure("launcher")
    assert launcher.recorded_python(tmp_path) is None
    config.record_python(tmp_path)
    assert launcher.recorded_python(tmp_path) == sys.executable
