"""The README's picture of a rig-driven source: edn's sample dancer rig rendered by Blender (top) and
the pose labels the pipeline draws from the rig's projected bones (bottom), a few frames apart.

    PYTHONPATH=server .venv/bin/python bench/rig_picture.py [--out docs/rig_poses.png]

The poses come from the add-on's rig sampling (rig_poses, as a Scene strip sends them), read by the
server's loader and drawn by its label renderer; Blender runs in a subprocess (see rig_accuracy.py).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from rig_accuracy import ROOT, Measure, render_and_project

TILE = (192, 256)  # portrait tiles around the figure


def crop_box(keypoints: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A 3:4 box (x0, y0, x1, y1) around the visible keypoints with a margin, inside the frame."""
    seen = keypoints[keypoints[:, 3] > 0, :2]
    (x0, y0), (x1, y1) = seen.min(axis=0), seen.max(axis=0)
    height = min(1.45 * (y1 - y0), size[1])
    width = min(height * TILE[0] / TILE[1], size[0])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.clip(cx - width / 2, 0, size[0] - width))
    top = int(np.clip(cy - height / 2, 0, size[1] - height))
    return left, top, left + int(width), top + int(height)


def picture(work: Path, measure: Measure) -> np.ndarray:
    import cv2

    sys.path.insert(0, str(ROOT / "server"))
    from edn_server.media import list_images
    from edn_server.pose.render import render_label
    from edn_server.pose.sequence import PoseSequence

    render_and_project(measure, work)
    rig = PoseSequence.load(work / "rig.npz")
    frames = list_images(work / "frames")
    top, bottom = [], []
    for index, path in enumerate(frames):
        x0, y0, x1, y1 = crop_box(rig.keypoints[index], rig.size)
        label = cv2.cvtColor(render_label(rig.keypoints[index], rig.size), cv2.COLOR_RGB2BGR)
        top.append(cv2.resize(cv2.imread(str(path))[y0:y1, x0:x1], TILE, interpolation=cv2.INTER_AREA))
        bottom.append(cv2.resize(label[y0:y1, x0:x1], TILE, interpolation=cv2.INTER_AREA))
    return np.vstack([np.hstack(top), np.hstack(bottom)])


def main(argv: list[str] | None = None) -> int:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "rig_poses.png")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edn-rig-picture-") as tmp:
        image = picture(Path(tmp), Measure(first=30, last=150, step=30))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), image)
    print(args.out, image.shape)
    return 0


if __name__ == "__main__":
    sys.exit(main())
