"""What a user looks at to judge a training run, all in the model folder: a sample grid (label |
generated | real for a few fixed training frames), the held-out sample (real | label | generated
for frames of the clip's held-out tail, never trained on: how the model does on poses it has not
seen, refreshed every HELDOUT_EVERY_S while training), and the loss curves (PNG and losses.json)."""
from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_file
from ..names import HELDOUT_SAMPLE_FILE, LOSSES_FILE, LOSSES_JSON
from .dataset import TrainingData
from .networks import split_alpha
from .steps import PairGenerator, generate_pair, over_plate, pair_batch, plain, refine_faces
from .window_warp import recut, recut_theta

log = logging.getLogger(__name__)
HELDOUT_EVERY_S = 120.0  # often enough to decide whether to stop early; each costs a few generator passes
HELDOUT_ROWS = 2
HELDOUT_CHAIN = 8  # frames generated in sequence (each on the previous output, as at transfer)

def to_image(t: torch.Tensor) -> np.ndarray:
    """(3, h, w) in [-1, 1] -> (h, w, 3) uint8."""
    pixels = ((t.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).cpu().numpy()


def sample_grid(labels: torch.Tensor, generated: torch.Tensor, real: torch.Tensor, gap: int = 4) -> np.ndarray:
    """One row per frame: label | generated | real, separated by white gaps."""
    return tile_rows(list(zip(labels, generated, real, strict=True)), gap)


@contextlib.contextmanager
def evaluating(*modules: torch.nn.Module | None) -> Iterator[list[torch.nn.Module]]:
    """The given modules (None left out, wrappers removed) in eval mode for the block, their modes restored after."""
    plain_modules = [plain(m) for m in modules if m is not None]
    modes = [m.training for m in plain_modules]
    for m in plain_modules:
        m.eval()
    try:
        yield plain_modules
    finally:
        for m, mode in zip(plain_modules, modes, strict=True):
            m.train(mode)


@torch.no_grad()
def training_samples(generator: torch.nn.Module, face_generator: torch.nn.Module | None, data: TrainingData, count: int,
                     device: torch.device) -> np.ndarray:
    """The grid for `count` fixed pairs spread over the clip: each second frame generated from the
    first's output as at inference, its face refined when a face generator is given."""
    starts = data.pair_starts(need_face=face_generator is not None)
    starts = starts[np.linspace(0, len(starts) - 1, min(count, len(starts))).round().astype(int)]
    with evaluating(generator, face_generator) as modules:
        batch = pair_batch(data, starts, device, face_boxes=face_generator is not None)
        generated = generate_pair(PairGenerator(modules[0]), batch)[1]
        if face_generator is not None:
            generated, _ = refine_faces(modules[1], generated, batch.label_cur, batch.boxes)
    return sample_grid(batch.label_cur, generated, batch.real_cur)


def heldout_indices(data: TrainingData, holdout_fraction: float) -> np.ndarray:
    """The clip's held-out tail, never trained on."""
    return np.arange(data.training_frames(holdout_fraction), len(data))


@torch.no_grad()
def heldout_chain(generator: torch.nn.Module, data: TrainingData, indices: np.ndarray,
                  device: torch.device) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(index, label, real, generated), each (1, 3, h, w), for every frame with a pose among the
    consecutive `indices`, generated one after the other on the previous output as transfer does
    (person mode: composited over the plate's window); a frame without a pose restarts the chain.
    `generator` is a plain module in eval mode (see evaluating)."""
    previous, config = None, generator.config
    for step, index in enumerate(indices):
        if not data.usable[index]:
            previous = None
            continue
        label, real = data.tensors(np.array([index]), device)
        if previous is not None and data.person:  # the previous output re-cut into this frame's window
            previous = recut(previous, recut_theta(data.windows[indices[step - 1:step]], data.windows[[index]], device))
        output = generator(label, previous)
        previous = split_alpha(output, config)[0]
        generated, _ = over_plate(output, data.person_tensors(np.array([index]), device)[1] if data.person else None, config)
        yield int(index), label, real, generated


@torch.no_grad()
def heldout_sample(generator: torch.nn.Module, face_generator: torch.nn.Module | None, data: TrainingData,
                   holdout_fraction: float, device: torch.device) -> np.ndarray | None:
    """real | label | generated for up to HELDOUT_ROWS frames of the first HELDOUT_CHAIN of the
    held-out tail (heldout_chain; a frame without a pose is not shown); None when the clip holds nothing out."""
    tail = heldout_indices(data, holdout_fraction)[:HELDOUT_CHAIN]
    shown = tail[data.usable[tail]]
    if len(shown) == 0:
        return None
    shown = set(shown[np.linspace(0, len(shown) - 1, min(HELDOUT_ROWS, len(shown))).round().astype(int)].tolist())
    rows = []
    with evaluating(generator, face_generator) as modules:
        for index, label, real, generated in heldout_chain(modules[0], data, tail, device):
            if index not in shown:
                continue
            if face_generator is not None and data.has_box[index]:
                generated, _ = refine_faces(modules[1], generated, label, data.face_boxes(np.array([index])))
            rows.append((real[0], label[0], generated[0]))
    return tile_rows(rows)


def write_heldout(folder: Path, networks: dict[str, torch.nn.Module], data: TrainingData, holdout_fraction: float,
                  device: torch.device, use_face: bool = True) -> Path | None:
    """heldout_sample.png in `folder` from a stage's networks (its face generator only with
    `use_face`); None (nothing written) without held-out frames."""
    face = networks.get("face_generator") if use_face else None
    grid = heldout_sample(networks["generator"], face, data, holdout_fraction, device)
    return None if grid is None else write_png(folder / HELDOUT_SAMPLE_FILE, grid)


def tile_rows(rows: list[tuple[torch.Tensor, ...]] | list[list[np.ndarray]], gap: int = 4) -> np.ndarray:
    """(3, h, w) tensors in [-1, 1] or (h, w, 3) uint8 images, one row per tuple, tiles and rows
    separated by white gaps."""
    lines = []
    for row in rows:
        tiles = [t if isinstance(t, np.ndarray) else to_image(t) for t in row]
        spacer = np.full((tiles[0].shape[0], gap, 3), 255, np.uint8)
        lines.append(np.concatenate([part for tile in tiles for part in (tile, spacer)][:-1], axis=1))
        lines.append(np.full((gap, lines[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(lines[:-1], axis=0)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    from ..media import write_image

    with atomic_file(path, suffix=".png") as tmp:
        write_image(tmp, rgb)
    return path


def read_losses(folder: Path) -> list[dict[str, Any]]:
    """The loss entries of losses.json ([] when missing or unreadable): a continued model adds to them."""
    try:
        entries = json.loads((Path(folder) / LOSSES_JSON).read_text())
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


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
