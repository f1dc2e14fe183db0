"""A generated person over the background plate, at the target's native resolution or a lower
output height, and the person alone with alpha ("person with alpha", for an Alpha Over strip).

frame = alpha * person + (1 - alpha) * plate. The person's colour and alpha come as a window
(see window.py) and are resampled into the frame at the window's box; outside the window alpha is
0, so the output there is the plate itself, byte for byte.
"""
from __future__ import annotations

import numpy as np

from ..errors import BAD_PARAMS, EdnError
from .window import paste_window, scale_box

TARGET = "target"
OUTPUT_HEIGHTS = (TARGET, 1080, 720, 512)
OUTPUT_KINDS = ("composite", "person-alpha")


def _cv2():
    import cv2

    return cv2


def output_size(native: tuple[int, int], output_height: str | int = TARGET, field: str = "output_height") -> tuple[int, int]:
    """(w, h) of the output frames: the target's native size, or a lower height with the same
    aspect (width rounded to an even number, as video encoders want). `field` names the
    parameter in the error a user sees."""
    width, height = native
    if output_height == TARGET or output_height == str(height):
        return (int(width), int(height))
    try:
        wanted = int(output_height)
    except (TypeError, ValueError):
        wanted = None
    if wanted not in OUTPUT_HEIGHTS[1:]:
        choices = ", ".join(str(h) for h in OUTPUT_HEIGHTS)
        raise EdnError(BAD_PARAMS, f"{field} {output_height!r} is not an output height; choose one of {choices}.")
    if wanted > height:
        raise EdnError(BAD_PARAMS, f"{field} {wanted} is above the target video's native height of {height} px; "
                                   f"choose {TARGET} (its own {height} px) or a lower height.")
    return (max(2, int(round(width * wanted / height / 2)) * 2), wanted)


def _as_alpha(alpha: np.ndarray) -> np.ndarray:
    alpha = np.asarray(alpha)
    if alpha.ndim == 3:
        alpha = alpha[..., 0]
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) / 255.0
    return np.clip(alpha.astype(np.float32), 0.0, 1.0)


def composite(person: np.ndarray, alpha: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """alpha * person + (1 - alpha) * plate as uint8; person and plate (H, W, 3) in 0..255,
    alpha (H, W) in 0..1 (or 0..255 as uint8). Where alpha is 0 the plate's bytes come out."""
    a = _as_alpha(alpha)[..., None]
    mixed = plate.astype(np.float32) + a * (np.asarray(person, np.float32) - plate.astype(np.float32))
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def person_rgba(person: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 with straight (not premultiplied) alpha, as PNG stores it."""
    a = np.rint(_as_alpha(alpha) * 255).astype(np.uint8)
    rgb = np.clip(np.rint(np.asarray(person, np.float32)), 0, 255).astype(np.uint8)
    return np.dstack([rgb, a])


class Compositor:
    """Builds output frames of one transfer from generated windows: the plate is resized to the
    output size once; each frame only resamples and blends the window's part of it.

    person / alpha windows: (h, w, 3) colour in 0..255 and (h, w) alpha in 0..1 at the
    generator's size; box: the window in the target's native frame pixels.
    """

    def __init__(self, plate: np.ndarray, output_height: str | int = TARGET, field: str = "output_height"):
        native = (plate.shape[1], plate.shape[0])
        self.size = output_size(native, output_height, field)
        self.factor = self.size[1] / native[1]
        if self.size == native:
            self.plate = np.ascontiguousarray(plate)
        else:
            self.plate = _cv2().resize(plate, self.size, interpolation=_cv2().INTER_AREA)

    def _pasted(self, person: np.ndarray, alpha: np.ndarray, box):
        box = scale_box(box, self.factor)
        colour = paste_window(np.asarray(person, np.float32), box, self.size, border="replicate")
        cover = paste_window(_as_alpha(alpha), box, self.size, border="constant")
        return colour, cover

    def composite(self, person: np.ndarray, alpha: np.ndarray, box) -> np.ndarray:
        """The output frame: the person over the plate."""
        frame = self.plate.copy()
        colour, cover = self._pasted(person, alpha, box)
        rows, cols = slice(cover.y0, cover.y1), slice(cover.x0, cover.x1)
        frame[rows, cols] = composite(colour.patch, cover.patch, frame[rows, cols])
        return frame

    def person_rgba(self, person: np.ndarray, alpha: np.ndarray, box) -> np.ndarray:
        """The person alone: (H, W, 4) uint8, alpha 0 (and black) outside the window."""
        colour, cover = self._pasted(person, alpha, box)
        frame = np.zeros((self.size[1], self.size[0], 4), np.uint8)
        frame[cover.y0:cover.y1, cover.x0:cover.x1] = person_rgba(colour.patch, cover.patch)
        return frame
