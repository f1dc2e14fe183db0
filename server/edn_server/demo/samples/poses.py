"""Building blocks of poses: bone rotations in degrees, named by what a body does.

A pose maps bone names to (x, y, z) Euler angles applied in Blender's 'YZX' order (twist about
the bone first, then sideways, then forwards), relative to the rest pose: standing, arms hanging,
facing -Y. Every bone's local Z points forwards, so a positive x angle swings a bone forwards; the
knee's sign is flipped so that a positive `knee` bends it the natural way. Pure Python.
"""
from __future__ import annotations

import math

from .body import Skeleton

Pose = dict[str, tuple[float, float, float]]

SIDES = ("L", "R")
BONES = (
    "hips", "spine", "chest", "neck", "head",
    "upper_arm.L", "forearm.L", "hand.L", "upper_arm.R", "forearm.R", "hand.R",
    "thigh.L", "shin.L", "foot.L", "thigh.R", "shin.R", "foot.R",
)


def _sign(side: str) -> float:
    # The figure faces -Y, so its left side is +X; sideways angles mirror between sides.
    return 1.0 if side == "L" else -1.0


def arm(side: str, out: float = 8, front: float = 0, twist: float = 0, elbow: float = 10, wrist: float = 0) -> Pose:
    """`out` raises the arm sideways (90 = T-pose), `front` forwards, `twist` turns it about itself
    (positive turns the elbow crease upwards when the arm is out), `elbow` bends the forearm."""
    s = _sign(side)
    return {
        f"upper_arm.{side}": (front, -s * twist, s * out),
        f"forearm.{side}": (elbow, 0.0, 0.0),
        f"hand.{side}": (wrist, 0.0, 0.0),
    }


def leg(side: str, front: float = 0, out: float = 0, knee: float = 0, toe: float | None = None) -> Pose:
    """`front` swings the thigh forwards, `out` sideways, `knee` bends; with `toe` None the foot is
    kept flat on the floor (see `settle`)."""
    s = _sign(side)
    pose = {f"thigh.{side}": (front, 0.0, s * out), f"shin.{side}": (-knee, 0.0, 0.0)}
    if toe is not None:
        pose[f"foot.{side}"] = (toe, 0.0, 0.0)
    return pose


def torso(bend: float = 0, twist: float = 0, lean: float = 0, nod: float = 0, turn: float = 0, tilt: float = 0,
          hips: float = 0) -> Pose:
    """`bend` forwards, `twist` turns the chest left, `lean` to the figure's left; `nod` down,
    `turn` the head left, `tilt` it left; `hips` tips the pelvis (and so the legs) forwards."""
    return {
        "hips": (hips, 0.0, 0.0),
        "spine": (bend * 0.5, twist * 0.4, -lean * 0.5),
        "chest": (bend * 0.5, twist * 0.6, -lean * 0.5),
        "neck": (nod * 0.4, turn * 0.4, -tilt * 0.5),
        "head": (nod * 0.6, turn * 0.6, -tilt * 0.5),
    }


def combine(*parts: Pose) -> Pose:
    pose: Pose = {}
    for part in parts:
        pose.update(part)
    return pose


def crouch_legs(sk: Skeleton, drop: float) -> tuple[float, float]:
    """Thigh and knee angles (degrees) that lower the hips by `drop` metres with the ankle
    straight below the hip (two-bone inverse kinematics, law of cosines)."""
    a, b = sk.thigh, sk.shin
    reach = max(min(a + b - drop, a + b - 1e-6), abs(a - b) + 0.05 * (a + b))
    hip_angle = math.acos((a * a + reach * reach - b * b) / (2 * a * reach))
    shin_angle = math.asin(a * math.sin(hip_angle) / b)
    return math.degrees(hip_angle), math.degrees(hip_angle + shin_angle)


def settle(sk: Skeleton, pose: Pose) -> tuple[Pose, float]:
    """Fill in flat feet and return how far the body must sink so the lower foot touches the floor."""
    pose = dict(pose)
    hip_pitch = math.radians(pose.get("hips", (0.0, 0.0, 0.0))[0])
    depths = []
    for side in SIDES:
        front, _, out = pose.get(f"thigh.{side}", (0.0, 0.0, 0.0))
        knee = -pose.get(f"shin.{side}", (0.0, 0.0, 0.0))[0]
        thigh_pitch = math.radians(front) - hip_pitch  # tipping the pelvis forwards swings the legs back
        shin_pitch = thigh_pitch - math.radians(knee)
        depth = (sk.thigh * math.cos(thigh_pitch) + sk.shin * math.cos(shin_pitch)) * math.cos(math.radians(out))
        depths.append(depth)
        if f"foot.{side}" not in pose:
            pose[f"foot.{side}"] = (-math.degrees(shin_pitch), 0.0, 0.0)
    return pose, (sk.thigh + sk.shin) - max(depths)


def complete(pose: Pose) -> Pose:
    """Every bone, unnamed ones at rest, angles rounded so specs and keys compare exactly."""
    return {bone: tuple(round(float(v), 3) for v in pose.get(bone, (0.0, 0.0, 0.0))) for bone in BONES}
