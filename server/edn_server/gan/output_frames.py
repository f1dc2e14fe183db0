"""How a transfer turns the generator's frames into output frames, per model mode and output kind.

- full-frame models (and every model trained before the person layer): the generator's frame at
  the model's resolution, as before; a lower `output_height` resizes it. No alpha to give.
- person models: the windows follow the normalized source poses (person_windows, the generator's
  aspect); each window's colour and alpha are composited over the plate at the target's native
  size or a lower output height ("composite"), or written as RGBA with straight alpha
  ("person-alpha": the person alone, for an Alpha Over strip; no mp4, which cannot hold alpha).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import BAD_PARAMS, EdnError
from ..person.composite import OUTPUT_KINDS, TARGET, Compositor, output_size
from ..person.plate import PERSON
from ..person.window import cut_window, person_windows
from ..person.window_frames import window_keypoints
from .labels import model_keypoints

if TYPE_CHECKING:
    from ..pose.sequence import PoseSequence
    from .model_io import TrainedModel
    from .sequence_generator import SequenceGenerator

COMPOSITE, PERSON_ALPHA = OUTPUT_KINDS


def check_output(trained: TrainedModel, output: str, output_height: str | int) -> None:
    """BAD_PARAMS for an unknown output kind, alpha from a full-frame model, or a height above the target's."""
    if output not in OUTPUT_KINDS:
        raise EdnError(BAD_PARAMS, f"output {output!r} is not an output kind; choose {COMPOSITE} (the person over the "
                                   f"target's background) or {PERSON_ALPHA} (the person alone with alpha, RGBA PNGs).")
    if output == PERSON_ALPHA and trained.mode != PERSON:
        raise EdnError(BAD_PARAMS, f"output {PERSON_ALPHA} needs a person-mode model; {trained.name!r} is full-frame "
                                   "(its target's background was not static, or it was trained before the person layer) "
                                   f"and has no alpha. Use output {COMPOSITE}.")
    output_size(trained.stats.frame_size, output_height)


class FullFrameOutput:
    """Frames as the model generates them (resized to a lower output height when one is asked for)."""

    def __init__(self, trained: TrainedModel, poses: PoseSequence, output_height: str | int = TARGET):
        self.keypoints = model_keypoints(poses.keypoints, poses.size, trained.resolution)
        self.usable = poses.usable
        self.size = trained.resolution
        if output_height != TARGET:
            self.size = output_size(trained.stats.frame_size, output_height)
        self.video = True

    def frame(self, engine: SequenceGenerator, i: int) -> np.ndarray:
        image = engine.step(self.keypoints[i] if self.usable[i] else None).image
        if (image.shape[1], image.shape[0]) != tuple(self.size):
            import cv2

            image = cv2.resize(image, tuple(self.size), interpolation=cv2.INTER_AREA)
        return image


class PersonOutput:
    """The person's window, composited over the plate or alone with alpha."""

    def __init__(self, trained: TrainedModel, poses: PoseSequence, output: str = COMPOSITE, output_height: str | int = TARGET):
        self.plate = trained.plate()
        native = trained.stats.frame_size
        if (self.plate.shape[1], self.plate.shape[0]) != tuple(native):
            import cv2

            self.plate = cv2.resize(self.plate, tuple(native), interpolation=cv2.INTER_AREA)
        self.resolution = trained.resolution
        self.windows = person_windows(poses.keypoints, native, self.resolution[0] / self.resolution[1], poses.fps).boxes
        self.keypoints, self.usable = poses.keypoints, poses.usable
        self.compositor = Compositor(self.plate, output_height)
        self.size = self.compositor.size
        self.alpha_only = output == PERSON_ALPHA
        self.video = not self.alpha_only

    def frame(self, engine: SequenceGenerator, i: int) -> np.ndarray:
        box = self.windows[i]
        points = window_keypoints(self.keypoints[i], box, self.resolution) if self.usable[i] else None
        generated = engine.step(points, box, cut_window(self.plate, box, self.resolution))
        alpha = generated.alpha if generated.alpha is not None else np.zeros(generated.image.shape[:2], np.float32)
        if self.alpha_only:
            return self.compositor.person_rgba(generated.image, alpha, box)
        return self.compositor.composite(generated.image, alpha, box)


def output_frames(trained: TrainedModel, poses: PoseSequence, output: str = COMPOSITE,
                  output_height: str | int = TARGET) -> FullFrameOutput | PersonOutput:
    check_output(trained, output, output_height)
    if trained.mode == PERSON:
        return PersonOutput(trained, poses, output, output_height)
    return FullFrameOutput(trained, poses, output_height)
