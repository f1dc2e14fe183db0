"""What a user looks at to judge a training run: a sample grid (label | generated | real for a few
fixed frames) and the loss curves, both PNGs in the model folder, plus losses.json."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_file
from ..names import LOSSES_FILE, LOSSES_JSON
from .dataset import TrainingData
from .steps import PairGenerator, generate_pair, pair_batch, plain, refine_faces

log = logging.getLogger(__name__)



def to_image(t: torch.Tensor) -> np.ndarray:
    """(3, h, w) in [-1, 1] -> (h, w, 3) uint8."""
    pixels = ((t.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).cpu().numpy()


def sample_grid(labels: torch.Tensor, generated: torch.Tensor, real: torch.Tensor, gap: int = 4) -> np.ndarray:
    """One row per frame: label | generated | real, separated by white gaps."""
    rows = []
    for label, fake, frame in zip(labels, generated, real, strict=True):
        tiles = [to_image(label), to_image(fake), to_image(frame)]
        spacer = np.full((tiles[0].shape[0], gap, 3), 255, np.uint8)
        rows.append(np.concatenate([tiles[0], spacer, tiles[1], spacer, tiles[2]], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


@torch.no_grad()
def training_samples(generator: torch.nn.Module, face_generator: torch.nn.Module | None, data: TrainingData, count: int,
                     device: torch.device) -> np.ndarray:
    """The grid for `count` fixed pairs spread over the clip: each second frame generated from the
    first's output as at inference, its face refined when a face generator is given."""
    starts = data.pair_starts(need_face=face_generator is not None)
    starts = starts[np.linspace(0, len(starts) - 1, min(count, len(starts))).round().astype(int)]
    modules = [plain(m) for m in (generator, face_generator) if m is not None]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    batch = pair_batch(data, starts, device, face_boxes=face_generator is not None)
    generated = generate_pair(PairGenerator(modules[0]), batch)[1]
    if face_generator is not None:
        generated, _ = refine_faces(modules[1], generated, batch.label_cur, batch.boxes)
    label_cur, real_cur = batch.label_cur, batch.real_cur
    for m, mode in zip(modules, modes, strict=True):
        m.train(mode)
    return sample_grid(label_cur, generated, real_cur)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    import cv2

    with atomic_file(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
    return path


def write_losses(folder: Path, entries: list[dict[str, Any]]) -> None:
    """losses.json, and losses.png when matplotlib is installed (one panel per stage)."""
    with atomic_file(folder / LOSSES_JSON) as tmp:
        tmp.write_text(json.dumps(entries))
    if not entries:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed; loss curves are only in %s", folder / LOSSES_JSON)
        return
    stages = list(dict.fromkeys(e["stage"] for e in entries))
    figure, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 3.5), squeeze=False)
    for axis, stage in zip(axes[0], stages, strict=True):
        rows = [e for e in entries if e["stage"] == stage]
        steps = [e["step"] for e in rows]
        names = [k for k in rows[-1] if k not in ("step", "stage")]
        for name in names:
            axis.plot(steps, [e.get(name, np.nan) for e in rows], label=name, linewidth=1)
        axis.set_title(f"stage: {stage}")
        axis.set_xlabel("step")
        axis.set_yscale("log")
        axis.legend(fontsize=7)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
    with atomic_file(folder / LOSSES_FILE, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=90)
    plt.close(figure)
