"""Label images: colours and geometry of the stick figure, visibility, letterboxing, files written."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from edn_server import media
from edn_server.errors import BAD_PARAMS, CANCELLED, EdnError
from edn_server.pose.landmarks import INDEX
from edn_server.pose.render import LIMBS, render_label, render_sequence
from edn_server.pose.sequence import PoseSequence

# Joint positions of a figure in a 512x512 frame, laid out so that no two limbs cross the
# forearms: the left arm points right horizontally, the right arm hangs down on the left.
JOINTS = {
    "nose": (256, 100), "left_shoulder": (296, 160), "right_shoulder": (216, 160),
    "left_elbow": (330, 200), "left_wrist": (450, 200), "right_elbow": (150, 220), "right_wrist": (110, 330),
    "left_hip": (286, 300), "right_hip": (226, 300), "left_knee": (290, 390), "right_knee": (222, 390),
    "left_ankle": (292, 480), "right_ankle": (220, 480),
}


def figure(visibility: float = 0.9) -> np.ndarray:
    k = np.zeros((33, 4), np.float32)
    k[:, :2] = JOINTS["nose"]  # face points sit on the nose; hand and foot points on their wrist or ankle
    for name, index in INDEX.items():
        for part in ("wrist", "ankle"):
            for side in ("left", "right"):
                if name.startswith(side) and any(f in name for f in (("pinky", "index", "thumb") if part == "wrist" else ("heel", "foot"))):
                    k[index, :2] = JOINTS[f"{side}_{part}"]
    for name, xy in JOINTS.items():
        k[INDEX[name], :2] = xy
    k[:, 3] = visibility
    return k


def colour_of(a: str, b: str) -> tuple[int, int, int]:
    return next(c for i, j, c, _ in LIMBS if (i, j) == (INDEX[a], INDEX[b]))


def along(image: np.ndarray, p: tuple[float, float], q: tuple[float, float]) -> np.ndarray:
    """Pixels at 25%..75% of the way from p to q (away from the joint dots)."""
    t = np.linspace(0.25, 0.75, 11)[:, None]
    points = np.round(np.asarray(p) * (1 - t) + np.asarray(q) * t).astype(int)
    return image[points[:, 1], points[:, 0]]


def test_forearms_have_their_own_colours_left_and_right_differ():
    image = render_label(figure(), (512, 512))
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    left, right = colour_of("left_elbow", "left_wrist"), colour_of("right_elbow", "right_wrist")
    assert left != right
    assert (along(image, JOINTS["left_elbow"], JOINTS["left_wrist"]) == left).all()
    assert (along(image, JOINTS["right_elbow"], JOINTS["right_wrist"]) == right).all()
    # the torso sides too: left and right of the body are told apart by colour alone
    assert (along(image, JOINTS["left_shoulder"], JOINTS["left_hip"]) == colour_of("left_shoulder", "left_hip")).all()
    assert colour_of("left_shoulder", "left_hip") != colour_of("right_shoulder", "right_hip")


def test_every_body_limb_has_a_distinct_colour():
    body = [c for _, _, c, detail in LIMBS if not detail]
    assert len(set(body)) == len(body)


def test_low_visibility_limbs_are_left_out():
    k = figure()
    k[INDEX["left_wrist"], 3] = 0.1
    image = render_label(k, (512, 512))
    assert not along(image, JOINTS["left_elbow"], JOINTS["left_wrist"]).any()
    assert (along(image, JOINTS["left_shoulder"], JOINTS["left_elbow"]) == colour_of("left_shoulder", "left_elbow")).all()
    assert not render_label(figure(visibility=0.2), (512, 512)).any()


def test_lines_are_anti_aliased_and_scale_with_the_image():
    image = render_label(figure(), (512, 512))
    column = image[180:222, 390, 1].astype(int)  # across the left forearm (cyan: green channel 255)
    assert ((column > 0) & (column < 255)).any(), "edges should blend into the black"
    big = render_label(figure(), (1024, 1024), src_size=(512, 512))
    thickness = lambda img, x, y0, y1: int((img[y0:y1, x, 1] > 127).sum())  # noqa: E731
    assert thickness(big, 780, 360, 440) >= 1.4 * thickness(image, 390, 180, 222)  # measured 11 px vs 7 px


def test_letterboxed_into_another_frame_without_distortion():
    # 512x512 keypoints into a 1024x512 label: scale 1, centred horizontally (offset 256)
    image = render_label(figure(), (1024, 512), src_size=(512, 512))
    shift = lambda p: (p[0] + 256, p[1])  # noqa: E731
    assert (along(image, shift(JOINTS["left_elbow"]), shift(JOINTS["left_wrist"])) == colour_of("left_elbow", "left_wrist")).all()
    assert not image[:, :200].any() and not image[:, 824:].any()
    # into a 256x128 label: scale 0.25, offset (64, 0)
    small = render_label(figure(), (256, 128), src_size=(512, 512))
    assert small.shape == (128, 256, 3)
    mid = np.round((np.add(JOINTS["left_elbow"], JOINTS["left_wrist"]) / 2) * 0.25 + (64, 0)).astype(int)
    assert small[mid[1], mid[0], 1] > 200


def test_render_speed_per_frame():
    k = figure()
    for size in ((512, 256), (1024, 512)):
        start = time.perf_counter()
        for _ in range(50):
            render_label(k, size, src_size=(512, 512))
        per_frame = (time.perf_counter() - start) / 50
        assert per_frame < 0.02, f"{per_frame * 1000:.1f} ms per {size} frame"  # measured 0.9 / 1.4 ms


def sequence(frames: int = 6) -> PoseSequence:
    k = np.repeat(figure()[None], frames, axis=0)
    k[:, :, 0] += np.arange(frames)[:, None] * 5.0
    detected = np.ones(frames, bool)
    detected[2] = False
    k[2] = 0
    return PoseSequence(k, detected, 24.0, (512, 512), frame_start=100)


def test_sequence_to_png_folder(tmp_path):
    seq = sequence()
    calls = []
    out = render_sequence(seq, tmp_path / "labels", size=(256, 128), progress=lambda d, t, s: calls.append((d, t)))
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"{100 + i:06d}.png" for i in range(6)]
    images = [cv2.imread(str(f)) for f in files]
    assert all(img.shape == (128, 256, 3) for img in images)
    assert not images[2].any() and all(img.any() for i, img in enumerate(images) if i != 2)
    assert calls[-1] == (6, 6)
    assert [p.name for p in tmp_path.iterdir()] == ["labels"]  # no temporary folder left behind


def test_sequence_to_mp4(tmp_path):
    seq = sequence()
    out = render_sequence(seq, tmp_path / "labels.mp4")
    info = media.probe(out)
    frames = list(media.iter_frames(info, prefetch=0))
    assert len(frames) == 6 and info.size == (512, 512) and info.fps == pytest.approx(24.0)
    assert frames[2].mean() < 2 and frames[3].mean() > 2


def test_bad_requests_leave_nothing(tmp_path):
    with pytest.raises(EdnError) as err:
        render_sequence(sequence(), tmp_path / "labels.avi")
    assert err.value.code == BAD_PARAMS and ".mp4" in err.value.message
    with pytest.raises(EdnError) as err:
        render_sequence(sequence(), tmp_path / "labels", size=(0, 128))
    assert err.value.code == BAD_PARAMS
    done = []
    with pytest.raises(EdnError) as err:
        render_sequence(sequence(), tmp_path / "labels", progress=lambda d, t, s: done.append(d), cancelled=lambda: len(done) >= 3)
    assert err.value.code == CANCELLED
    with pytest.raises(EdnError):
        render_sequence(sequence(), tmp_path / "labels.mp4", cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []
