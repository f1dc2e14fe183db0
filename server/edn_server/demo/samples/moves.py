"""The target's repertoire: what a training clip needs to show (walks in every direction, turns,
T-pose, arm moves, a crouch, side and back views), each varied by the routine's seeded RNG."""
from __future__ import annotations

from collections.abc import Callable

from .poses import arm, combine, crouch_legs, leg, torso
from .routine import Routine, neutral


def face_camera(r: Routine) -> None:
    r.turn_to(r.rng.uniform(-20, 20))


def walk_across(r: Routine) -> None:
    s = r.stage
    side = -1.0 if r.x > s.center_x else 1.0
    x = s.center_x + side * r.rng.uniform(0.6, 1.0) * s.half_width
    r.walk_to(*r.clamp(x, r.y + r.rng.uniform(-0.3, 0.3)))


def walk_toward(r: Routine) -> None:
    s = r.stage
    r.walk_to(*r.clamp(r.x + r.rng.uniform(-0.4, 0.4), s.center_y - r.rng.uniform(0.7, 1.0) * s.half_depth))


def walk_away(r: Routine) -> None:
    s = r.stage
    r.walk_to(*r.clamp(r.x + r.rng.uniform(-0.4, 0.4), s.center_y + r.rng.uniform(0.6, 1.0) * s.half_depth))


def wander(r: Routine) -> None:
    """Walk back toward the middle, so the dancer is not parked at an edge for most of the clip."""
    s = r.stage
    r.walk_to(s.center_x + r.rng.uniform(-0.6, 0.6) * s.half_width, s.center_y + r.rng.uniform(-0.6, 0.6) * s.half_depth)


def turn_around(r: Routine) -> None:
    face_camera(r)
    r.turn_by(r.rng.choice((-360.0, 360.0)), seconds_per_90=0.6, arms=combine(arm("L", out=25), arm("R", out=25)))
    r.key(0.4, neutral(r.rng))


def t_pose(r: Routine) -> None:
    face_camera(r)
    t = combine(torso(turn=r.rng.uniform(-8, 8)), arm("L", out=88, elbow=2), arm("R", out=88, elbow=2),
                leg("L", out=6, knee=3), leg("R", out=8))
    r.key(0.8, t)
    r.hold(r.rng.uniform(0.8, 1.5))
    r.key(0.8, neutral(r.rng))


def arms_up(r: Routine) -> None:
    face_camera(r)
    up = combine(torso(nod=-10), arm("L", out=165, elbow=12), arm("R", out=160, elbow=8), leg("L", out=5, knee=6), leg("R", out=4))
    r.key(0.9, up)
    r.hold(r.rng.uniform(0.4, 0.8))
    r.key(0.9, neutral(r.rng))


def wave(r: Routine) -> None:
    face_camera(r)
    side = r.rng.choice(("L", "R"))
    other = "R" if side == "L" else "L"
    for i in range(r.rng.randint(3, 5)):
        r.key(0.3 if i else 0.6, combine(torso(tilt=4 if side == "L" else -4), arm(other, out=10, elbow=12),
                                         arm(side, out=125 if i % 2 else 100, twist=80, elbow=45 if i % 2 else 70)))
    r.key(0.7, neutral(r.rng))


def reach_forward(r: Routine) -> None:
    face_camera(r)
    r.key(0.8, combine(torso(bend=10), arm("L", front=85, elbow=5), arm("R", front=80, elbow=8), leg("L", knee=8), leg("R")))
    r.key(0.7, combine(torso(bend=5, twist=25), arm("L", out=60, front=60, elbow=20), arm("R", out=45, front=70, elbow=10)))
    r.key(0.7, combine(torso(bend=5, twist=-25), arm("L", out=45, front=70, elbow=10), arm("R", out=60, front=60, elbow=20)))
    r.key(0.7, neutral(r.rng))


def crouch(r: Routine) -> None:
    face_camera(r)
    depth = r.rng.uniform(0.25, 0.38) * (r.sk.thigh + r.sk.shin)
    thigh, knee = crouch_legs(r.sk, depth)
    low = combine(torso(bend=25 + r.rng.uniform(0, 10), nod=-15), arm("L", front=70, out=15, elbow=20),
                  arm("R", front=65, out=12, elbow=25), leg("L", front=thigh, out=10, knee=knee), leg("R", front=thigh, out=12, knee=knee))
    r.key(1.0, low)
    r.hold(r.rng.uniform(0.3, 0.7))
    r.key(1.0, neutral(r.rng))


def side_view(r: Routine) -> None:
    r.turn_to(r.rng.choice((-90.0, 90.0)) + r.rng.uniform(-10, 10))
    r.key(0.8, combine(torso(nod=5), arm("L", front=80, elbow=10), arm("R", front=-25, elbow=15), leg("L", front=5), leg("R", knee=8)))
    r.key(0.8, combine(torso(nod=-5), arm("L", front=-20, elbow=20), arm("R", front=150, elbow=10), leg("L", knee=6), leg("R", front=4)))
    r.key(0.7, neutral(r.rng))
    face_camera(r)


def back_view(r: Routine) -> None:
    r.turn_to(180.0 + r.rng.uniform(-15, 15))
    r.key(0.8, combine(torso(turn=30), arm("L", out=70, elbow=30), arm("R", out=40, elbow=10), leg("L", out=6), leg("R", knee=8)))
    r.hold(r.rng.uniform(0.4, 0.9))
    r.key(0.8, neutral(r.rng))
    face_camera(r)


def look_around(r: Routine) -> None:
    face_camera(r)
    for turn in (r.rng.uniform(30, 50), -r.rng.uniform(30, 50)):
        r.key(0.7, combine(torso(turn=turn, twist=turn * 0.4, tilt=turn * 0.1), arm("L", out=14, front=5, elbow=20),
                           arm("R", out=12, front=-5, elbow=15), leg("L", knee=10, front=3), leg("R", out=3)))
    r.key(0.6, neutral(r.rng))


# Everything in REQUIRED appears once in every target clip, in a seeded order, with a walk back
# toward the middle after some moves; then the RNG draws from the whole repertoire until the clip
# is long enough.
REQUIRED: tuple[Callable[[Routine], None], ...] = (
    walk_across, walk_toward, walk_away, turn_around, t_pose, arms_up, wave, crouch, side_view, back_view,
)
REPERTOIRE: tuple[Callable[[Routine], None], ...] = REQUIRED + (reach_forward, look_around, walk_across, walk_toward, wander)
WANDER_CHANCE = 0.35
