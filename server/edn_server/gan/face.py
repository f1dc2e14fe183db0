"""The face region the face GAN refines: a square box around MediaPipe's face points, and
differentiable crop / paste of that box in (N, C, H, W) image tensors."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..pose.landmarks import FACE

# EDN crops 128 px faces from 256 px high frames; the box scales with the frame height.
REFERENCE_SIDE = 128
REFERENCE_HEIGHT = 256
MIN_SIDE = 32
SIDE_MULTIPLE = 16  # the face generator halves the crop up to 4 times


@dataclass(frozen=True)
class FaceBox:
    """A square box in pixels: columns x0 .. x0 + side - 1, rows y0 .. y0 + side - 1."""

    x0: int
    y0: int
    side: int

    @property
    def x1(self) -> int:
        return self.x0 + self.side

    @property
    def y1(self) -> int:
        return self.y0 + self.side

    def to_tuple(self) -> tuple[int, int, int]:
        return (self.x0, self.y0, self.side)


def face_side(frame_height: int, multiple: int = SIDE_MULTIPLE) -> int:
    """128 px at a height of 256, proportional to the height, rounded to `multiple`, at least 32."""
    scaled = REFERENCE_SIDE * frame_height / REFERENCE_HEIGHT
    return max(MIN_SIDE, int(round(scaled / multiple)) * multiple)


def face_box(keypoints: np.ndarray | torch.Tensor, frame_size: tuple[int, int], side: int | None = None,
             multiple: int = SIDE_MULTIPLE) -> FaceBox | None:
    """The face box for one pose: keypoints (33, 4) [x_px, y_px, z, visibility] in the pixels of
    the generator's frame of `frame_size` (w, h).

    Centred on the extent of the face points (nose, eyes, ears, mouth). The side is `side` or
    face_side(h); it is never larger than the frame, and near a border the box is shifted (not
    shrunk) to stay inside, so every box of a target has the same size and crops can be batched.
    Returns None when no face point has coordinates (no person in that frame).
    """
    width, height = frame_size
    points = np.asarray(keypoints.detach().cpu() if isinstance(keypoints, torch.Tensor) else keypoints, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] <= max(FACE) or points.shape[1] < 2:
        raise ValueError(f"face_box expects keypoints shaped (33, 4), got {points.shape}")
    side = face_side(height, multiple) if side is None else int(side)
    largest = min(width, height) // multiple * multiple
    if largest < MIN_SIDE:
        raise ValueError(f"frame {width}x{height} is too small for a face box (needs at least {MIN_SIDE} px each way)")
    side = min(max(side, MIN_SIDE), largest)

    face = points[list(FACE), :2]
    face = face[np.isfinite(face).all(axis=1)]
    if len(face) == 0:
        return None
    cx, cy = (face.min(axis=0) + face.max(axis=0)) / 2.0
    x0 = int(np.clip(round(cx - side / 2.0), 0, width - side))
    y0 = int(np.clip(round(cy - side / 2.0), 0, height - side))
    return FaceBox(x0, y0, side)


def _per_sample(boxes: FaceBox | Sequence[FaceBox], images: torch.Tensor) -> list[FaceBox] | None:
    """None for one box shared by the batch, else one box per sample (all the same side)."""
    if isinstance(boxes, FaceBox):
        _check_inside(boxes, images)
        return None
    boxes = list(boxes)
    if images.dim() != 4 or len(boxes) != images.shape[0]:
        raise ValueError(f"got {len(boxes)} face boxes for a batch of shape {tuple(images.shape)}; pass one box per sample")
    if len({b.side for b in boxes}) > 1:
        raise ValueError("face boxes of one batch must have the same side")
    for b in boxes:
        _check_inside(b, images)
    return boxes


def _check_inside(box: FaceBox, images: torch.Tensor) -> None:
    height, width = images.shape[-2:]
    if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height:
        raise ValueError(f"face box {box.to_tuple()} (x0, y0, side) is outside the {width}x{height} image")


def crop(images: torch.Tensor, boxes: FaceBox | Sequence[FaceBox]) -> torch.Tensor:
    """The box's pixels of (…, C, H, W) images; a sequence of boxes crops each sample with its own."""
    per_sample = _per_sample(boxes, images)
    if per_sample is None:
        return images[..., boxes.y0:boxes.y1, boxes.x0:boxes.x1]
    return torch.stack([images[i, :, b.y0:b.y1, b.x0:b.x1] for i, b in enumerate(per_sample)])


def _paste_one(images: torch.Tensor, patch: torch.Tensor, box: FaceBox) -> torch.Tensor:
    height, width = images.shape[-2:]
    placed = F.pad(patch, (box.x0, width - box.x1, box.y0, height - box.y1))
    inside = torch.zeros((height, width), dtype=torch.bool, device=images.device)
    inside[box.y0:box.y1, box.x0:box.x1] = True  # a fresh mask, not part of the autograd graph
    # torch.where, not slice assignment: both inputs keep their gradients, pixels are copied exactly
    return torch.where(inside, placed, images)


def paste(images: torch.Tensor, patches: torch.Tensor, boxes: FaceBox | Sequence[FaceBox]) -> torch.Tensor:
    """A new tensor equal to `images` with `patches` (the crops' shape) written into the box(es)."""
    per_sample = _per_sample(boxes, images)
    side = boxes.side if per_sample is None else per_sample[0].side
    if tuple(patches.shape[-2:]) != (side, side) or patches.shape[:-2] != images.shape[:-2]:
        raise ValueError(f"patches shaped {tuple(patches.shape)} do not fit boxes of side {side} in images {tuple(images.shape)}")
    if per_sample is None:
        return _paste_one(images, patches, boxes)
    return torch.cat([_paste_one(images[i:i + 1], patches[i:i + 1], b) for i, b in enumerate(per_sample)])
