"""The background plate and the static-background check, on real footage (subject 4's studio).

Person masks here are a cheap colour key of the studio (MediaPipe's segmentation is wired in
later); the plate must match the bare background of frames it never saw."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import shared_clip
from edn_server import media
from edn_server.person.plate import (
    FULL_FRAME,
    PERSON,
    PlateOptions,
    check_background,
    estimate_plate,
    person_region,
    sample_indices,
    samples_within,
)

TRAIN_END, HELD_OUT = 720, range(720, 800, 8)


def studio_mask(frame: np.ndarray) -> np.ndarray:
    """Subject 4 against a white studio: saturated or dark pixels, the largest blob (drops the dark ceiling corners)."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    mask = ((hsv[..., 1] > 45) | (hsv[..., 2] < 120)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((25, 25), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count < 2:
        return mask.astype(np.float32)
    return (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.float32)


@pytest.fixture(scope="module")
def subject4() -> dict[int, np.ndarray]:
    """Subject 4's plate samples from the training range and every 8th held-out frame."""
    info = media.probe(shared_clip("edn_subject4_train.mp4"))
    wanted = set(sample_indices(TRAIN_END, samples_within(info.size, PlateOptions())).tolist()) | set(HELD_OUT)
    return {i: frame for i, frame in enumerate(media.iter_frames(info, 0, 800)) if i in wanted}


def split(frames: dict[int, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return [f for i, f in sorted(frames.items()) if i < TRAIN_END], [f for i, f in sorted(frames.items()) if i >= TRAIN_END]


def test_plate_matches_held_out_background_and_selects_person_mode(subject4):
    train, held_out = split(subject4)
    plate = estimate_plate(train, [studio_mask(f) for f in train])
    assert plate.image.shape == (512, 1024, 3) and plate.image.dtype == np.uint8
    assert plate.samples == len(train) and plate.filled_fraction < 0.05
    for frame in held_out:
        bare = ~person_region(studio_mask(frame), (1024, 512))
        difference = np.abs(frame.astype(np.int16) - plate.image.astype(np.int16))[bare]
        assert np.median(difference) < 3, np.median(difference)  # measured 1
    check = check_background(held_out, [studio_mask(f) for f in held_out], plate)
    assert check.mode == PERSON, check.reason
    assert "static" in check.reason and check.to_dict()["mode"] == PERSON


def test_a_panning_camera_selects_full_frame(subject4):
    """The same footage, shifted 3 px further each frame: the masks follow the person, as a real segmentation would."""
    def pan(image: np.ndarray, index: int) -> np.ndarray:
        shift = np.float32([[1, 0, 3.0 * (index % 240) - 360], [0, 1, 0]])
        return cv2.warpAffine(image, shift, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT)

    panned = {i: pan(f, i) for i, f in subject4.items()}
    masks = {i: pan(studio_mask(f), i) for i, f in subject4.items()}
    train = sorted(i for i in panned if i < TRAIN_END)
    held_out = sorted(i for i in panned if i >= TRAIN_END)
    plate = estimate_plate([panned[i] for i in train], [masks[i] for i in train])
    check = check_background([panned[i] for i in held_out], [masks[i] for i in held_out], plate)
    assert check.mode == FULL_FRAME, check.reason
    assert "background changes" in check.reason and check.moved_frames > 0.5


def test_empty_masks_select_full_frame_and_never_uncovered_pixels_are_inpainted(subject4):
    train, held_out = split(subject4)
    box = np.zeros((512, 1024), np.float32)
    box[100:300, 400:600] = 1.0  # covers these pixels in every sample: nothing to take a median of
    plate = estimate_plate(train[:8], [box] * 8)
    assert plate.filled[150:250, 450:550].all() and not plate.filled[:50].any()
    assert 150 < plate.image[200, 500].mean() < 255  # inpainted from the white studio around, not left black
    empty = [np.zeros((64, 128), np.float32)] * len(held_out)  # a reduced-resolution mask, as extraction keeps
    check = check_background(held_out, empty, plate)
    assert check.mode == FULL_FRAME and "mask is empty" in check.reason


def test_long_or_large_clips_use_a_bounded_number_of_samples():
    assert samples_within((3840, 2160), PlateOptions(max_bytes=256 << 20)) == 8  # 4 bytes a pixel
    assert samples_within((1024, 512), PlateOptions()) == 48
    assert len(sample_indices(100_000, 48)) == 48 and sample_indices(5, 48).tolist() == [0, 1, 2, 3, 4]
