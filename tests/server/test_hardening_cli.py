"""Every CLI failure a user can cause reads `edn: error: CODE: sentence` and exits 2, without a
traceback: unwritable or odd -o paths, malformed pose files, bad sizes, ports and data dirs."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_hardening_faults import read_only

ERROR_LINE = re.compile(r"^edn: error: [A-Z_]+: \S.*$", re.M)


def edn(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edn_server", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, errors="replace")


def assert_coded_failure(run: subprocess.CompletedProcess, code: str) -> None:
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    assert ERROR_LINE.search(run.stderr), run.stderr
    assert f"edn: error: {code}: " in run.stderr, run.stderr


def pose_file(path: Path, **arrays) -> Path:
    data = {"keypoints": np.zeros((3, 33, 4), np.float32), "detected": np.ones(3, bool),
            "fps": np.float64(30), "size": np.array([64, 48], np.int32)}
    data.update(arrays)
    with open(path, "wb") as out:
        np.savez(out, **data)
    return path


@pytest.fixture
def poses(tmp_path) -> Path:
    return pose_file(tmp_path / "poses.npz")


@pytest.mark.parametrize("bad", [{"size": np.int32(64)}, {"size": np.array([64])}, {"fps": np.array([30.0, 25.0])},
                                 {"size": np.array([200000, 200000])}, {"fps": np.float64("nan")}])
@pytest.mark.parametrize("command", ["smooth", "normalize"])
def test_a_malformed_pose_file_is_bad_pose_file(tmp_path, poses, bad, command):
    broken = pose_file(tmp_path / "broken.npz", **bad)
    extra = ["--target", poses] if command == "normalize" else []
    assert_coded_failure(edn("pose", command, broken, *extra, "-o", tmp_path / "out.npz"), "BAD_POSE_FILE")


def test_an_output_that_cannot_be_written_is_output_unwritable(tmp_path, poses):
    assert_coded_failure(edn("pose", "smooth", poses, "-o", tmp_path), "OUTPUT_UNWRITABLE")  # a folder
    assert_coded_failure(edn("pose", "smooth", poses, "-o", tmp_path / ("n" * 300 + ".npz")), "OUTPUT_UNWRITABLE")
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        assert_coded_failure(edn("pose", "smooth", poses, "-o", locked / "out.npz"), "OUTPUT_UNWRITABLE")


@pytest.mark.parametrize("args", [
    ["pose", "render", "{poses}", "-o", "{tmp}/labels", "--size", "abc"],
    ["pose", "render", "{poses}", "-o", "{tmp}/labels", "--size", "200000x200000"],
    ["pose", "normalize", "{poses}", "--target", "{poses}", "-o", "{tmp}/n.npz", "--offset-x", "inf"],
    ["pose", "extract", "{poses}", "-o", "{tmp}/p.npz", "--fps", "inf"],
    ["pose", "extract", "{poses}", "-o", "{tmp}/p.npz", "--fps", "1e-300"],
    ["serve", "--port", "99999"],
    ["serve", "--port", "-1"],
    ["no-such-command"],
])
def test_bad_arguments_are_bad_params(tmp_path, poses, args):
    run = edn(*(a.format(poses=poses, tmp=tmp_path) for a in args))
    assert_coded_failure(run, "BAD_PARAMS")


def test_serve_on_a_data_dir_it_cannot_use_is_output_unwritable(tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    assert_coded_failure(edn("serve", "--data-dir", afile), "OUTPUT_UNWRITABLE")
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        assert_coded_failure(edn("serve", "--data-dir", locked / "data"), "OUTPUT_UNWRITABLE")


def test_a_name_in_invalid_utf8_is_printed_as_its_bytes(tmp_path, poses):
    out = os.fsdecode(os.fsencode(tmp_path) + b"/\xff.npz")
    run = subprocess.run([sys.executable, "-m", "edn_server", "pose", "smooth", str(poses), "-o", os.fsencode(out)],
                         capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert os.fsencode(out) in run.stdout
