"""Frames without a detected person: fill the short gaps, and say in words where the gaps are."""
from __future__ import annotations

import numpy as np

from .sequence import PoseSequence

# Below this share of frames with a detected person, describe_gaps warns that the clip may be unusable.
LOW_DETECTION_FRACTION = 0.5
# describe_gaps lists at most this many ranges per kind, then counts the rest.
MAX_LISTED_RANGES = 6


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where `mask` is True, in order."""
    padded = np.concatenate(([False], np.asarray(mask, dtype=bool), [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def fill_short_gaps(keypoints: np.ndarray, detected: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate runs of at most `max_gap` undetected frames that have a detection on both
    sides. Gaps at the clip's ends and longer gaps stay empty: inventing motion there would mislead.

    Returns new (keypoints, interpolated) arrays; the inputs are not changed."""
    filled = np.array(keypoints, dtype=np.float32, copy=True)
    interpolated = np.zeros(len(detected), dtype=bool)
    for a, b in runs(~np.asarray(detected, dtype=bool)):
        if a == 0 or b == len(detected) or b - a > max_gap:
            continue
        before, after = filled[a - 1], filled[b]
        weights = (np.arange(a, b) - (a - 1)) / float(b - (a - 1))
        filled[a:b] = before + weights[:, None, None] * (after - before)
        interpolated[a:b] = True
    return filled, interpolated


def _format_ranges(ranges: list[tuple[int, int]], offset: int) -> str:
    shown = [f"{a + offset}" if b - a == 1 else f"{a + offset}-{b - 1 + offset}" for a, b in ranges[:MAX_LISTED_RANGES]]
    more = len(ranges) - MAX_LISTED_RANGES
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def describe_gaps(seq: PoseSequence) -> str:
    """One line (two with a warning) on how many frames have a person and which do not.
    Frame numbers are the source clip's (0-based, inclusive ranges)."""
    total = len(seq)
    if total == 0:
        return "0 frames: nothing was extracted."
    detected = int(seq.detected.sum())
    filled = seq.interpolated & ~seq.detected
    missing = ~(seq.detected | seq.interpolated)
    first, last = seq.frame_start, seq.frame_start + total - 1
    parts = [f"frames {first}-{last}: person found in {detected}/{total} ({100.0 * detected / total:.1f}%)"]
    if filled.any():
        parts.append(f"{int(filled.sum())} interpolated (frames {_format_ranges(runs(filled), seq.frame_start)})")
    if missing.any():
        parts.append(f"{int(missing.sum())} without a person (frames {_format_ranges(runs(missing), seq.frame_start)})")
    else:
        parts.append("no gaps left")
    text = "; ".join(parts)
    if detected < LOW_DETECTION_FRACTION * total:
        text += (
            f"\nwarning: a person was found in only {100.0 * detected / total:.0f}% of the frames, so the poses are"
            " mostly missing. Choose a frame range where one person is fully visible, or try --model heavy."
        )
    return text
