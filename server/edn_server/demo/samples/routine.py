"""A keyframe timeline being written: where the dancer stands, which way it faces, how it is posed.

Moves (in `moves.py` and `dance.py`) append keys; Blender interpolates between them with smooth
Bezier curves. Pure Python: the parent process can inspect a choreography without Blender.
"""
from __future__ import annotations

import dataclasses
import math
import random

from .body import Skeleton
from .poses import Pose, arm, combine, complete, leg, settle, torso
from .spec import Stage


@dataclasses.dataclass(frozen=True)
class Key:
    frame: int  # 1-based, like Blender's timeline
    pose: Pose  # every bone, degrees
    x: float  # floor position, metres
    y: float
    drop: float  # how far the body sinks so that the lower foot stays on the floor
    yaw: float  # degrees; 0 faces the camera, 180 shows the back; unwrapped (no jumps at 360)


def neutral(rng: random.Random) -> Pose:
    """Relaxed standing with a little asymmetry: a perfectly symmetric stance is where a pose
    detector most easily swaps left and right legs."""
    knee = rng.uniform(6, 12)
    return combine(
        torso(turn=rng.uniform(-6, 6), lean=rng.uniform(-2, 2)),
        arm("L", out=rng.uniform(7, 12), elbow=rng.uniform(8, 18)),
        arm("R", out=rng.uniform(7, 12), elbow=rng.uniform(8, 18)),
        leg("L", front=knee * 0.4, out=3, knee=knee),
        leg("R", front=-2, out=4),
    )


class Routine:
    def __init__(self, sk: Skeleton, stage: Stage, fps: float, rng: random.Random):
        self.sk = sk
        self.stage = stage
        self.fps = fps
        self.rng = rng
        self.frame = 1.0
        self.x, self.y, self.yaw = stage.center_x, stage.center_y, 0.0
        self.pose: Pose = neutral(rng)
        self.keys: list[Key] = []
        self.key(0.0, self.pose)

    def key(self, seconds: float, pose: Pose | None = None, x: float | None = None, y: float | None = None,
            yaw: float | None = None) -> None:
        """Add a key `seconds` after the last one; omitted values carry over."""
        self.frame += seconds * self.fps
        if pose is not None:
            self.pose = pose
        self.x = self.x if x is None else x
        self.y = self.y if y is None else y
        self.yaw = self.yaw if yaw is None else yaw
        full, drop = settle(self.sk, self.pose)
        key = Key(int(round(self.frame)), complete(full), round(self.x, 4), round(self.y, 4), round(drop, 4),
                  round(self.yaw, 3))
        if self.keys and self.keys[-1].frame >= key.frame:
            self.keys[-1] = dataclasses.replace(key, frame=self.keys[-1].frame)
        else:
            self.keys.append(key)

    def hold(self, seconds: float) -> None:
        self.key(seconds)

    # -- locomotion shared by both dancers ---------------------------------------------------

    def turn_to(self, yaw: float, seconds_per_90: float = 0.45) -> None:
        """Turn on the spot with small alternating steps; yaw is absolute, the shorter way round."""
        delta = (yaw - self.yaw + 180.0) % 360.0 - 180.0
        if abs(delta) < 1.0:
            return
        self.turn_by(delta, seconds_per_90)

    def turn_by(self, delta: float, seconds_per_90: float = 0.45, arms: Pose | None = None) -> None:
        steps = max(2, math.ceil(abs(delta) / 60.0))
        seconds = max(0.5, abs(delta) / 90.0 * seconds_per_90) / steps
        start = self.yaw
        for i in range(1, steps + 1):
            side = "L" if i % 2 else "R"
            other = "R" if side == "L" else "L"
            lifted = combine(self.upper_body(arms), leg(side, front=18, knee=35), leg(other, front=-3, knee=5))
            self.key(seconds * 0.5, lifted, yaw=start + delta * (i - 0.5) / steps)
            self.key(seconds * 0.5, combine(self.upper_body(arms), neutral_legs(self.rng)), yaw=start + delta * i / steps)

    def upper_body(self, arms: Pose | None = None) -> Pose:
        base = {k: v for k, v in self.pose.items() if not k.startswith(("thigh", "shin", "foot"))}
        return combine(base, arms or {})

    def walk_to(self, x: float, y: float, step_seconds: float = 0.55) -> None:
        """Face the destination, then walk there: keys at every foot contact and passing moment."""
        dx, dy = x - self.x, y - self.y
        distance = math.hypot(dx, dy)
        if distance < 0.1:
            return
        heading = math.degrees(math.atan2(dx, -dy))  # yaw that faces (dx, dy); 0 faces -Y
        self.turn_to(self.yaw + ((heading - self.yaw + 180.0) % 360.0 - 180.0))
        stride = 0.78 * (self.sk.thigh + self.sk.shin)
        steps = max(2, round(distance / stride))
        x0, y0 = self.x, self.y
        lead = self.rng.choice(("L", "R"))
        swing = self.rng.uniform(14, 22)
        for i in range(1, steps + 1):
            other = "R" if lead == "L" else "L"
            passing = combine(torso(turn=self.rng.uniform(-5, 5)), arm(lead, front=2, elbow=15), arm(other, front=2, elbow=15),
                              leg(lead, front=12, knee=42), leg(other, front=-2, knee=4))
            f = (i - 0.5) / steps
            self.key(step_seconds * 0.5, passing, x=x0 + dx * f, y=y0 + dy * f)
            contact = combine(torso(bend=3), arm(other, front=swing, elbow=25), arm(lead, front=-swing, elbow=10),
                              leg(lead, front=22, knee=4), leg(other, front=-17, knee=12, toe=10))
            f = i / steps
            self.key(step_seconds * 0.5, contact, x=x0 + dx * f, y=y0 + dy * f)
            lead = other
        self.key(step_seconds * 0.6, neutral(self.rng))

    def clamp(self, x: float, y: float) -> tuple[float, float]:
        s = self.stage
        return (min(max(x, s.center_x - s.half_width), s.center_x + s.half_width),
                min(max(y, s.center_y - s.half_depth), s.center_y + s.half_depth))


def neutral_legs(rng: random.Random) -> Pose:
    return {k: v for k, v in neutral(rng).items() if k.startswith(("thigh", "shin", "foot"))}
