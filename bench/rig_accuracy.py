"""How well a rig's projected bones agree with what the pose detector sees in a render of that rig.

    PYTHONPATH=server .venv/bin/python bench/rig_accuracy.py [--first 1 --last 300 --step 3] [--model full]

Animates edn's sample source dancer (its rig drives the rendered figure), projects the rig with the
add-on's rig_poses, renders the same frames in Workbench, detects them with the real PoseLandmarker
(edn's extract_poses) and writes bench/results/rig_accuracy.json: per landmark group, the median
distance between projected and detected landmarks as a share of the figure's height (in pixels at
its hips' depth), over the frames where both found the person. Blender runs in a subprocess.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED_MODELS = Path(os.environ.get("EDN_SHARED_MODELS", ROOT.parent / "shared" / "models"))
GROUPS = {
    "limbs": tuple(range(13, 17)) + tuple(range(25, 29)),  # elbows, wrists, knees, ankles
    "torso": (11, 12, 23, 24),  # shoulders, hips
    "face": tuple(range(0, 11)),
    "hands": tuple(range(17, 23)),  # pinky, index, thumb
    "feet": tuple(range(29, 33)),  # heels, toe tips
}


@dataclasses.dataclass(frozen=True)
class Measure:
    first: int = 1
    last: int = 300
    step: int = 3
    model: str = "full"
    seed: int = 0


def render_and_project(measure: Measure, out: Path) -> None:
    """The Blender child: out/frames/*.png, out/rig.npz, out/height_px.npy."""
    sys.path.insert(0, str(ROOT / "server"))
    from edn_server.demo.samples.render import bpy_python
    from edn_server.demo.samples.spec import source_spec

    spec = dataclasses.replace(source_spec(measure.seed), frame_count=max(measure.last, 1))
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.json").write_text(spec.to_json())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "server"), os.environ.get("PYTHONPATH")])))
    command = [*bpy_python(), str(ROOT / "bench" / "rig_accuracy_blender.py"), "--spec", str(out / "spec.json"), "--out", str(out),
               "--first", str(measure.first), "--last", str(measure.last), "--step", str(measure.step)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"the Blender child failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")


def detect(frames: Path, model: str, fps: float):
    from edn_server.pose.detect import extract_poses

    shared = SHARED_MODELS / f"pose_landmarker_{model}.task"
    return extract_poses(frames, model=model, fps=fps, use_cache=False, model_path=shared if shared.is_file() else None)


def compare(rig: np.ndarray, rig_found: np.ndarray, detected: np.ndarray, found: np.ndarray, height_px: np.ndarray) -> dict:
    """Median distance per group as a share of the height, over frames where both have the person."""
    both = rig_found & found
    error = np.linalg.norm(rig[both, :, :2] - detected[both, :, :2], axis=2) / height_px[both, None]
    groups = {name: float(np.median(error[:, list(ids)])) for name, ids in GROUPS.items()}
    per_landmark = np.median(error, axis=0)
    return {"median_share_of_height": {k: round(v, 4) for k, v in groups.items()},
            "median_share_per_landmark": [round(float(v), 4) for v in per_landmark],
            "frames_compared": int(both.sum()), "frames": int(len(both)),
            "height_px_median": round(float(np.median(height_px)), 1)}


def measure_accuracy(measure: Measure, work: Path) -> dict:
    render_and_project(measure, work)
    sys.path.insert(0, str(ROOT / "server"))
    from edn_server.pose.sequence import PoseSequence

    rig = PoseSequence.load(work / "rig.npz")  # the add-on's file, read by the server's own loader
    found = detect(work / "frames", measure.model, rig.fps)
    report = compare(rig.keypoints, rig.detected, found.keypoints, found.detected, np.load(work / "height_px.npy"))
    return {"measure": dataclasses.asdict(measure), "clip": "sample source dancer (demo/samples, seed 0), 512x384", **report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Measure):
        parser.add_argument(f"--{field.name}", type=type(field.default), default=field.default)
    parser.add_argument("--out", type=Path, default=RESULTS / "rig_accuracy.json")
    args = parser.parse_args(argv)
    measure = Measure(**{field.name: getattr(args, field.name) for field in dataclasses.fields(Measure)})
    with tempfile.TemporaryDirectory(prefix="edn-rig-accuracy-") as tmp:
        result = measure_accuracy(measure, Path(tmp))
    result["command"] = "PYTHONPATH=server .venv/bin/python bench/rig_accuracy.py " + " ".join(argv or sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median_share_of_height"]), f"frames compared {result['frames_compared']}/{result['frames']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
