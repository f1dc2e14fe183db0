"""The source's dance: beat-timed moves near one spot on the floor, drawn by the seeded RNG."""
from __future__ import annotations

from collections.abc import Callable

from .poses import arm, combine, crouch_legs, leg, torso
from .routine import Routine

BEAT = 60.0 / 116.0  # seconds; an ordinary pop tempo


def _facing(r: Routine) -> None:
    r.turn_to(r.rng.uniform(-25, 25), seconds_per_90=0.3)


def step_touch(r: Routine) -> None:
    _facing(r)
    width = r.rng.uniform(0.12, 0.22)
    for i in range(4):
        side = "L" if i % 2 == 0 else "R"
        other = "R" if side == "L" else "L"
        sign = 1.0 if side == "L" else -1.0
        x, _ = r.clamp(r.stage.center_x + sign * width, r.y)
        r.key(BEAT, combine(torso(lean=-6 * sign, tilt=4 * sign),
                            arm(side, out=35, front=30, elbow=60), arm(other, out=20, front=-20, elbow=40),
                            leg(side, out=14, knee=8), leg(other, out=4, knee=25, front=10)), x=x)


def arm_pump(r: Routine) -> None:
    _facing(r)
    for i in range(4):
        up = i % 2 == 0
        thigh, knee = crouch_legs(r.sk, 0.02 if up else 0.08)
        r.key(BEAT, combine(torso(nod=-8 if up else 6, bend=0 if up else 8),
                            arm("L", out=150 if up else 60, elbow=20 if up else 95, twist=40),
                            arm("R", out=145 if up else 55, elbow=25 if up else 100, twist=40),
                            leg("L", front=thigh, out=8, knee=knee), leg("R", front=thigh, out=9, knee=knee)))


def disco_point(r: Routine) -> None:
    _facing(r)
    side = r.rng.choice(("L", "R"))
    other = "R" if side == "L" else "L"
    for i in range(4):
        high = i % 2 == 0
        r.key(BEAT, combine(torso(lean=8 if (side == "L") == high else -4, turn=20 if side == "L" else -20),
                            arm(side, out=150 if high else 35, front=10 if high else -10, elbow=5),
                            arm(other, out=40, elbow=100, twist=-60),
                            leg(side, out=10, knee=4 if high else 20, front=0 if high else 12), leg(other, out=6, knee=10)))


def jumping_jack(r: Routine) -> None:
    _facing(r)
    for i in range(4):
        wide = i % 2 == 0
        r.key(BEAT * 0.8, combine(torso(nod=-5 if wide else 0),
                                  arm("L", out=160 if wide else 15, elbow=10), arm("R", out=155 if wide else 12, elbow=12),
                                  leg("L", out=16 if wide else 3, knee=4), leg("R", out=15 if wide else 4, knee=2)))


def spin(r: Routine) -> None:
    _facing(r)
    r.turn_by(r.rng.choice((-360.0, 360.0)), seconds_per_90=BEAT * 0.6,
              arms=combine(arm("L", out=80, elbow=15), arm("R", out=75, elbow=20)))


def sway_arms_up(r: Routine) -> None:
    _facing(r)
    for i in range(4):
        sign = 1.0 if i % 2 == 0 else -1.0
        r.key(BEAT, combine(torso(lean=12 * sign, tilt=8 * sign, nod=-10),
                            arm("L", out=150 + 15 * sign, elbow=15), arm("R", out=150 - 15 * sign, elbow=15),
                            leg("L", out=8, knee=12 if sign > 0 else 2), leg("R", out=9, knee=2 if sign > 0 else 12)))


def kick(r: Routine) -> None:
    _facing(r)
    for i in range(4):
        side = "L" if i % 2 == 0 else "R"
        other = "R" if side == "L" else "L"
        r.key(BEAT * 0.5, combine(torso(bend=-5), arm("L", out=70, elbow=20), arm("R", out=70, elbow=20),
                                  leg(side, front=50, knee=15, toe=10), leg(other, knee=6)))
        r.key(BEAT * 0.5, combine(torso(), arm("L", out=35, elbow=50), arm("R", out=35, elbow=50),
                                  leg(side, out=4, knee=10), leg(other, out=4, knee=6)))


def squat_groove(r: Routine) -> None:
    _facing(r)
    for i in range(4):
        low = i % 2 == 0
        thigh, knee = crouch_legs(r.sk, (0.22 if low else 0.05) * (r.sk.thigh + r.sk.shin))
        r.key(BEAT, combine(torso(bend=20 if low else 0, twist=15 if i % 4 == 0 else -15),
                            arm("L", front=60 if low else 10, out=20, elbow=60 if low else 30),
                            arm("R", front=55 if low else -10, out=25, elbow=70 if low else 20),
                            leg("L", front=thigh, out=12, knee=knee), leg("R", front=thigh, out=12, knee=knee)))


def shuffle_side(r: Routine) -> None:
    """A few steps to another spot near the source's place, so it does not stand frozen."""
    s = r.stage
    r.walk_to(*r.clamp(s.center_x + r.rng.uniform(-1, 1) * s.half_width, s.center_y + r.rng.uniform(-1, 1) * s.half_depth),
              step_seconds=BEAT)


REPERTOIRE: tuple[Callable[[Routine], None], ...] = (
    step_touch, arm_pump, disco_point, jumping_jack, spin, sway_arms_up, kick, squat_groove, shuffle_side,
)
