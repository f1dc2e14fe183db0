"""Whether a model's face stage earns its place: at the end of training, the clip's held-out frames
(never trained on) are generated as transfer does and their face crop scored against the real
frame twice, with the face refiner and with the body stage alone. The face stage is used only if
it raises the mean held-out face SSIM; otherwise the model keeps its face weights (training can
continue them) but model.json's "face" marks it unused and transfers skip the refiner. face_check.png
in the model folder shows a few of the held-out faces (real | body stage alone | face refined) to
see whether the refiner also looks better.

model.json "face": {"used", "reason", "ssim_with", "ssim_without", "frames"}. A model without the
key (trained before this check) uses its face stage when it has one (face_decision).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..names import FACE_CHECK_FILE
from .dataset import TrainingData
from .face import FaceBox
from .metrics import ssim
from .steps import refine_faces
from .training_review import evaluating, heldout_chain, heldout_indices, tile_rows, to_image, write_png

CHECK_FRAMES = 64  # the first frames of the held-out tail: a steady mean for a few generator passes each
PICTURE_ROWS = 4


@dataclasses.dataclass(frozen=True)
class FaceDecision:
    """Whether transfers run the face refiner, and why (the held-out face SSIMs when measured)."""

    used: bool
    reason: str
    ssim_with: float | None = None
    ssim_without: float | None = None
    frames: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_face_stage(generator: nn.Module, face_generator: nn.Module, data: TrainingData, holdout_fraction: float,
                     device: torch.device, folder: Path | None = None) -> FaceDecision:
    """Score the held-out face crops with and without the face refiner and decide (see the module
    docstring); with `folder`, write face_check.png there."""
    with_face, without, crops = [], [], []
    tail = heldout_indices(data, holdout_fraction)[:CHECK_FRAMES]
    with evaluating(generator, face_generator) as (body, face), torch.no_grad():
        for index, label, real, generated in heldout_chain(body, data, tail, device):
            if not data.has_box[index]:
                continue
            boxes = data.face_boxes(np.array([index]))
            refined, _ = refine_faces(face, generated, label, boxes)
            crops.append([_face_pixels(image, boxes[0]) for image in (real, generated, refined)])
            without.append(ssim(crops[-1][1], crops[-1][0]))
            with_face.append(ssim(crops[-1][2], crops[-1][0]))
    if not with_face:
        held_out = "nothing of the clip is held out" if len(tail) == 0 else "no held-out frame shows a face"
        return FaceDecision(True, f"{held_out}, so the face stage is used unchecked")
    if folder is not None:
        shown = np.linspace(0, len(crops) - 1, min(PICTURE_ROWS, len(crops))).round().astype(int)
        write_png(folder / FACE_CHECK_FILE, tile_rows([crops[i] for i in shown]))
    score_with, score_without, frames = round(float(np.mean(with_face)), 4), round(float(np.mean(without)), 4), len(with_face)
    change = f"held-out face SSIM {score_without:.3f} -> {score_with:.3f} over {frames} frames"
    if score_with > score_without:
        return FaceDecision(True, f"the face stage raised {change}", score_with, score_without, frames)
    verb = "lowered" if score_with < score_without else "did not raise"
    return FaceDecision(False, f"the face stage {verb} {change}; transfers use the body stage alone",
                        score_with, score_without, frames)


def _face_pixels(frames: torch.Tensor, box: FaceBox) -> np.ndarray:
    """(h, w, 3) uint8 of the box in the first frame of (N, 3, H, W) in [-1, 1], as written to PNGs."""
    return to_image(frames[0])[box.y0:box.y1, box.x0:box.x1]


def face_decision(info: dict[str, Any], has_face_generator: bool) -> dict[str, Any]:
    """{"used", "reason"} from a model.json (its "face" entry, else what models before the check did)."""
    recorded = info.get("face")
    if isinstance(recorded, dict) and isinstance(recorded.get("used"), bool):
        return {**recorded, "used": recorded["used"] and has_face_generator}
    if not has_face_generator:
        return {"used": False, "reason": "the model has no face stage"}
    return {"used": True, "reason": "trained before the held-out face check; its face stage is used"}
