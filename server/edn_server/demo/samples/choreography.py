"""The whole timeline of a sample clip, decided by its spec and seed alone.

The sequence of moves never depends on the clip's length (it is cut at the end), so a short clip
of a seed is the start of the long one, and a still of frame N matches frame N of the clip.
"""
from __future__ import annotations

import random

from . import dance, moves
from .body import skeleton
from .routine import Key, Routine
from .spec import ClipSpec


def choreograph(spec: ClipSpec) -> list[Key]:
    """Keys from frame 1 to at least `spec.frame_count`."""
    rng = random.Random(f"edn-samples:{spec.role}:{spec.seed}")  # str seeds are stable across runs
    routine = Routine(skeleton(spec.body), spec.stage, spec.fps, rng)
    if spec.role == "target":
        order = list(moves.REQUIRED)
        rng.shuffle(order)
        repertoire = moves.REPERTOIRE
    elif spec.role == "source":
        order = []
        repertoire = dance.REPERTOIRE
    else:
        raise ValueError(f"unknown sample role {spec.role!r}")
    previous = None
    while routine.frame <= spec.frame_count + 1:
        if order:
            move = order.pop(0)
        else:
            move = rng.choice([m for m in repertoire if m is not previous])
        move(routine)
        previous = move
        if spec.role == "target" and move is not moves.wander and rng.random() < moves.WANDER_CHANCE:
            moves.wander(routine)
            previous = moves.wander
    return routine.keys
