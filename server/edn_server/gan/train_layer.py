"""A training run's layer: person over a background plate, or full-frame (see person/target.py).

The target's poses are extracted with person masks (cached like any pose extraction), the plate
is estimated and the background checked; the mode and its reason go to the training log and
model.json, and a person-mode model keeps its plate as plate.png at the target's native size.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from ..names import PLATE_FILE
from ..person.plate import FULL_FRAME, PERSON
from ..person.target import TargetLayer, choose_layer, full_frame
from ..pose.pipeline import pose_sequence
from ..progress import Progress
from .frame_writer import write_png
from .train_config import TrainConfig, person_config

log = logging.getLogger(__name__)
__all__ = ["TargetLayer", "choose_target_layer", "layer_info", "resolved_config"]


def choose_target_layer(video: Path, start: int, end: int, config: TrainConfig, progress: Progress,
                        cancelled: Callable[[], bool] | None) -> TargetLayer:
    if config.layer == FULL_FRAME:
        layer = full_frame("full-frame training was asked for (layer full-frame)")
    else:
        poses = pose_sequence(video, start, end, smoothing=config.smoothing, model=config.pose_model, masks=True,
                              progress=progress, cancelled=cancelled)
        layer = choose_layer(video, start, poses, config.layer)
    log.info("training layer: %s (%s)", layer.mode, layer.reason)
    return layer


def resolved_config(requested: TrainConfig, layer: TargetLayer) -> TrainConfig:
    """The config the networks are built from for this layer."""
    if layer.mode == PERSON:
        return person_config(requested)
    return dataclasses.replace(requested, layer=FULL_FRAME)


def layer_info(folder: Path, layer: TargetLayer, config: TrainConfig) -> dict:
    """model.json's `mode`, `layer` (the reason and figures) and `output_size` (what a transfer
    writes by default: the target's native size in person mode, the model's frames otherwise);
    writes plate.png in person mode."""
    output = list(config.output_size)
    if layer.mode == PERSON and layer.plate is not None:
        write_png(Path(folder) / PLATE_FILE, layer.plate.image)
        output = [layer.plate.image.shape[1], layer.plate.image.shape[0]]
    return {"mode": layer.mode, "layer": layer.to_dict(), "output_size": output}
