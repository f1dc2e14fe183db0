"""Compositing a generated person window over the plate, and the RGBA person-with-alpha frames."""
from __future__ import annotations

import numpy as np
import pytest
from edn_server.errors import BAD_PARAMS, EdnError
from edn_server.person.composite import Compositor, composite, output_size, person_rgba

NATIVE = (1024, 512)
BOX = np.array([312.5, 20.0, 400.0, 480.0], np.float32)  # a 5:6 window around the person


@pytest.fixture(scope="module")
def plate() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (NATIVE[1], NATIVE[0], 3), dtype=np.uint8)


def person_window() -> tuple[np.ndarray, np.ndarray]:
    """A red 'person' filling the middle of a 200x240 window, alpha 1 there and 0 around."""
    colour = np.zeros((240, 200, 3), np.float32)
    colour[...] = (220.0, 30.0, 40.0)
    alpha = np.zeros((240, 200), np.float32)
    alpha[40:200, 60:140] = 1.0
    return colour, alpha


def test_composite_is_the_plate_where_alpha_is_zero_and_the_person_where_it_is_one(plate):
    person = np.full_like(plate, 77)
    assert np.array_equal(composite(person, np.zeros(plate.shape[:2]), plate), plate)
    assert np.array_equal(composite(person, np.ones(plate.shape[:2]), plate), person)
    half = composite(person, np.full(plate.shape[:2], 0.5), plate)
    assert np.abs(half.astype(int) - (plate.astype(int) + 77) / 2).max() <= 0.5


def test_compositor_pastes_the_window_at_native_resolution(plate):
    colour, alpha = person_window()
    frame = Compositor(plate).composite(colour, alpha, BOX)
    assert frame.shape == (512, 1024, 3) and frame.dtype == np.uint8
    # window pixel (u, v) lands at BOX origin + (u + 0.5) * 2 - 0.5: the person's middle is solid red
    torso = frame[20 + 2 * 100, 312 + 2 * 100]
    assert np.array_equal(torso, [220, 30, 40])
    far = np.ones(plate.shape[:2], bool)
    far[20 - 2:500 + 2, 312 - 2:712 + 3] = False  # outside the window: the plate, byte for byte
    assert np.array_equal(frame[far], plate[far])
    assert np.array_equal(frame[30:50, 330:420], plate[30:50, 330:420])  # inside the window where alpha is 0


def test_person_with_alpha_frames(plate):
    colour, alpha = person_window()
    rgba = Compositor(plate).person_rgba(colour, alpha, BOX)
    assert rgba.shape == (512, 1024, 4) and rgba.dtype == np.uint8
    assert rgba[..., 3][:, :300].max() == 0 and rgba[..., 3][:, 720:].max() == 0  # far from the person
    assert rgba[220, 512, 3] == 255 and np.array_equal(rgba[220, 512, :3], [220, 30, 40])  # the torso
    assert np.array_equal(person_rgba(np.full((2, 2, 3), 9.0), np.full((2, 2), 0.5))[0, 0], [9, 9, 9, 128])


def test_lower_output_heights_and_bad_ones(plate):
    assert output_size(NATIVE, "target") == NATIVE and output_size(NATIVE, 512) == NATIVE
    assert output_size((1920, 1080), 720) == (1280, 720) and output_size((1080, 1920), "1080") == (608, 1080)
    colour, alpha = person_window()
    small = Compositor(np.ascontiguousarray(np.repeat(np.repeat(plate, 2, 0), 2, 1)), 512)  # a 2048x1024 target
    assert small.size == (1024, 512)
    frame = small.composite(colour, alpha, BOX * 2)
    assert np.array_equal(frame[20 + 200, 312 + 200], [220, 30, 40])
    for bad in (720, 1080, 300, "4k"):
        with pytest.raises(EdnError) as raised:
            Compositor(plate, bad)
        assert raised.value.code == BAD_PARAMS and "output_height" in raised.value.message
    with pytest.raises(EdnError, match="above the target video's native height of 512"):
        output_size(NATIVE, 720)
