"""bench/gpu_check.sh's smoke version: the GPU check's code runs on the CPU in seconds, so it
cannot rot between the runs on a CUDA machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke_writes_generation_and_training_figures(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run([str(ROOT / "bench" / "gpu_check.sh"), "--smoke", "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["smoke"] and report["preset"] == "tiny"
    assert set(report["generation"]) == {"global", "local"}
    for row in report["generation"].values():
        assert row["fps"]["eager_fp32"] > 0 and row["gflop_per_frame"] > 0
    assert report["training"]["body_s_per_step"] > 0
    assert report["training_run"] == {"skipped": "the smoke version never trains (no CUDA, or --smoke)"}
    assert f"wrote {out}" in done.stdout
