"""Frame-by-frame synthesis shared by transfer and evaluation: poses in the model's pixels ->
label image -> body generator conditioned on its own previous output -> face refinement.

Choices (documented for users in infer.py too):
- The first frame, and every frame after one with no person, is conditioned on a zero previous
  frame, exactly as the first frame of each training pair was. The chain carries the body
  generator's output (before face refinement), which is what training conditioned on.
- A frame with no usable pose gets a black label and is still generated (on a zero previous
  frame, so the last person seen does not linger); with no person to draw the generator renders
  an empty, roughly uniform frame, an honest gap rather than a frozen copy of the last frame.
- Person mode (a generator with predict_alpha): keypoints come in window pixels with the window's
  box; the previous colour is re-cut from its window to the current one on the device, and the
  face generator refines the face of the window composited over the plate's window (what it was
  trained on), written back into the person's colour.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import BAD_PARAMS, EdnError
from ..pose.render import render_label
from .compiled import CompiledOrEager, maybe_compiled
from .face import FaceBox, crop, face_box
from .networks import split_alpha
from .window_warp import recut, recut_theta

log = logging.getLogger(__name__)


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA, where convolutions run fastest on NHWC tensors. On the CPU it measured
    no faster for the preview generator and 15-20% slower for the paper one (instance norm copies
    NHWC maps back and forth; bench/gan.py), so CPU tensors stay contiguous."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def image_to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [-1, 1], in the device's memory_format."""
    t = torch.from_numpy(np.ascontiguousarray(rgb)).to(device, non_blocking=True)
    return (t.permute(2, 0, 1).unsqueeze(0).float() / 127.5 - 1.0).contiguous(memory_format=memory_format(device))


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [-1, 1] -> (H, W, 3) uint8 RGB."""
    pixels = ((t[0].float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).contiguous().cpu().numpy()


def pick_device(device: str | torch.device | None, module: nn.Module | None = None) -> torch.device:
    """`device`, else where `module` lives, else CUDA when available, else the CPU.
    Raises BAD_PARAMS for a device name torch does not know or CUDA on a machine without it."""
    if device is not None:
        try:
            chosen = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise EdnError(BAD_PARAMS, f"Device {device!r} is not one torch knows; use cpu or cuda (or cuda:N).") from exc
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise EdnError(BAD_PARAMS, f"Device {device!r} asked for, but this torch build or machine has no CUDA GPU; use cpu.")
        return chosen
    if module is not None:
        try:
            return next(module.parameters()).device
        except StopIteration:
            pass
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def precision(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (tensor cores, half the memory traffic); exact fp32 on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class GeneratedFrame:
    image: np.ndarray  # (H, W, 3) uint8, face refined where a face was found
    body: np.ndarray  # the body generator's frame before face refinement
    label: np.ndarray  # the label image the generator saw
    face_box: FaceBox | None
    has_person: bool
    alpha: np.ndarray | None = None  # person mode: (h, w) float32 in [0, 1]


class SequenceGenerator:
    """Generates one clip's frames in order, carrying the previous output between calls."""

    def __init__(self, generator: nn.Module, resolution: tuple[int, int], device: torch.device,
                 face_generator: nn.Module | None = None, face_side: int | None = None, compile: bool = False):
        self.device = device
        self.resolution = (int(resolution[0]), int(resolution[1]))
        layout = memory_format(device)
        self.generator = generator.to(device).eval().to(memory_format=layout)
        self._fallback_said = False
        self._body_call = maybe_compiled(self.generator, compile, self._fell_back)
        self.face_generator = None
        if face_generator is not None:
            self.face_generator = face_generator.to(device).eval().to(memory_format=layout)
            self._face_call = maybe_compiled(self.face_generator, compile, self._fell_back)
        self.face_side = face_side
        config = getattr(generator, "config", None)
        self._chained = bool(getattr(config, "use_previous_frame", True))
        self._config = config
        self._previous: torch.Tensor | None = None
        self._previous_box = None
        # An explicit zero frame for the start of a chain (what the generator uses for None), made
        # in inference mode like the frames that follow it, so a compiled generator sees one input
        # signature and compiles once.
        with torch.inference_mode():
            self._zeros = torch.zeros((1, int(getattr(config, "image_channels", 3)), self.resolution[1],
                                       self.resolution[0]), device=device).contiguous(memory_format=layout)
        self._black = np.zeros((self.resolution[1], self.resolution[0], 3), np.uint8)

    def _fell_back(self, message: str) -> None:
        if not self._fallback_said:  # one toolchain problem, said once for both networks
            self._fallback_said = True
            log.warning(message)

    @property
    def compiled(self) -> bool:
        return isinstance(self._body_call, CompiledOrEager) and not self._body_call.fell_back

    @torch.inference_mode()
    def warm_up(self) -> None:
        """Run the networks once on a blank frame, so a compiled generator compiles here (its own
        progress stage) rather than inside the first frame; the chain is left as it was."""
        label = image_to_tensor(self._black, self.device)
        with precision(self.device):
            body = self._body_call(label, self._zeros if self._chained else None)
            body = split_alpha(body, self._config)[0] if self._config is not None else body
            if self.face_generator is not None and self.face_side:
                box = FaceBox(0, 0, min(self.face_side, *self.resolution))
                self._face_call(crop(label, box), crop(body, box))

    def reset(self) -> None:
        """Start a new chain: the next frame is conditioned on zeros."""
        self._previous = None
        self._previous_box = None

    def label(self, keypoints: np.ndarray | None) -> np.ndarray:
        """The label image for keypoints in the model's pixels (None: black, no person)."""
        if keypoints is None:
            return self._black
        return render_label(keypoints, self.resolution, scale=1.0)

    def _previous_input(self, window) -> torch.Tensor | None:
        if not self._chained:
            return None
        if self._previous is None:
            return self._zeros
        if window is not None and self._previous_box is not None:
            return recut(self._previous, recut_theta([self._previous_box], [window], self.device))
        return self._previous

    @torch.inference_mode()
    def step(self, keypoints: np.ndarray | None, window=None, plate: np.ndarray | None = None) -> GeneratedFrame:
        """The next frame for (33, 4) keypoints in the model's pixels, or None where nobody was found.
        Person mode: `window` is this frame's box (x0, y0, w, h) in target pixels and `plate` the
        plate cut at it, (h, w, 3) uint8."""
        has_person = keypoints is not None
        if not has_person:
            self.reset()
        label_image = self.label(keypoints)
        label = image_to_tensor(label_image, self.device)
        with precision(self.device):
            output = self._body_call(label, self._previous_input(window))
        body, alpha = split_alpha(output.float(), self._config) if self._config is not None else (output.float(), None)
        body = body.contiguous(memory_format=memory_format(self.device))
        self._previous = body if (has_person and self._chained) else None
        self._previous_box = window
        body_image = tensor_to_image(body)
        box = None
        refined = body_image
        if has_person and self.face_generator is not None:
            box = face_box(keypoints, self.resolution, side=self.face_side)
            if box is not None:
                seen = body if alpha is None or plate is None else self._over_plate(body, alpha, plate)
                # Only the box's pixels are converted and replaced: the rest stays bit-identical.
                refined = body_image.copy()
                refined[box.y0:box.y1, box.x0:box.x1] = tensor_to_image(self._refine_face(label, seen, box))
        alpha_image = alpha[0, 0].float().cpu().numpy() if alpha is not None else None
        return GeneratedFrame(image=refined, body=body_image, label=label_image, face_box=box, has_person=has_person,
                              alpha=alpha_image)

    def _over_plate(self, colour: torch.Tensor, alpha: torch.Tensor, plate: np.ndarray) -> torch.Tensor:
        background = image_to_tensor(plate, self.device)
        return background + alpha * (colour - background)

    def _refine_face(self, label: torch.Tensor, body: torch.Tensor, box: FaceBox) -> torch.Tensor:
        """The refined face crop (1, 3, side, side)."""
        with precision(self.device):
            return self._face_call(crop(label, box), crop(body, box)).float()
