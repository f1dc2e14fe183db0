"""Which bone point stands for each of MediaPipe's 33 pose landmarks: the built-in mappings (Rigify
meta-rig and generated rig, Mixamo, edn's sample rig), a custom mapping, and choosing the built-in
that fits an armature.

No bpy: bones are given by name, and their rest geometry as numpy arrays (rig_poses reads them from
Blender). Each landmark lists alternatives in order of preference, so a rig without finger, toe or
face bones still maps: hand tips come from the hand bone, toe tips from the foot, and the face from
the head bone, placed in the character's own rest frame (left, forward, up) in units of that bone's
length, whatever the bone's roll.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np

from .pose_file import LANDMARK_INDEX, LANDMARK_NAMES

HEAD, TAIL = "HEAD", "TAIL"
Offset = tuple[float, float, float]  # (left, forward, up) of the character at rest, in bone lengths
# Normalization scales and places the body by these; a custom mapping must give them.
CORE_LANDMARKS = ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_ankle", "right_ankle")


class RigMappingError(Exception):
    """An armature cannot be mapped to the landmarks; the message names what is missing."""

    code = "RIG_MAPPING"


@dataclasses.dataclass(frozen=True)
class PointSource:
    """A point on a bone: its head or tail, moved `along` the bone (in bone lengths; negative goes
    back towards the head) and by `offset` in the character's rest frame."""

    bone: str
    end: str = HEAD
    along: float = 0.0
    offset: Offset = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.end not in (HEAD, TAIL):
            raise ValueError(f"end must be {HEAD} or {TAIL}, not {self.end!r}")


@dataclasses.dataclass(frozen=True)
class RigMapping:
    """landmark name → alternatives, the first whose bone the rig has wins. `anchor` is a bone every
    rig of this kind has; the name prefix it carries in a rig ("mixamorig:", "ORG-") is applied to all.
    `prefix` fixes the prefix instead (a generated Rigify rig through its DEF- bones rather than ORG-)."""

    name: str
    points: Mapping[str, tuple[PointSource, ...]]
    anchor: str = ""
    prefix: str | None = None


@dataclasses.dataclass(frozen=True)
class ResolvedMapping:
    """A mapping fitted to one rig: landmark index → the one point used, with the rig's bone names.
    Landmarks missing from `points` are never visible (a custom mapping may leave some out)."""

    name: str
    points: Mapping[int, PointSource]


# -- the built-in mappings -----------------------------------------------------------------------------

# The face on the head bone, measured on edn's sample figure (its head bone runs from the top of the
# neck to the crown); near enough to a real head for the detector's face points.
_FACE: dict[str, Offset] = {
    "nose": (0.0, 0.47, 0.47),
    "left_eye_inner": (0.076, 0.40, 0.576), "left_eye": (0.141, 0.42, 0.576), "left_eye_outer": (0.206, 0.36, 0.576),
    "left_ear": (0.364, -0.02, 0.51), "mouth_left": (0.12, 0.41, 0.272),
}


def _mirrored(offsets: dict[str, Offset]) -> dict[str, Offset]:
    both = dict(offsets)
    for name, (left, forward, up) in offsets.items():
        if name.startswith("left_") or name.endswith("_left"):
            both[name.replace("left", "right")] = (-left, forward, up)
    return both


def _face(head_bone: str, eye_bones: tuple[str, str] | None = None, eye_end: str = HEAD) -> dict[str, tuple[PointSource, ...]]:
    points = {name: (PointSource(head_bone, offset=offset),) for name, offset in _mirrored(_FACE).items()}
    if eye_bones is not None:  # eye bones where the rig has them, the head's eyes where not
        for side, bone in zip(("left", "right"), eye_bones, strict=True):
            points[f"{side}_eye"] = (PointSource(bone, eye_end), *points[f"{side}_eye"])
    return points


@dataclasses.dataclass(frozen=True)
class _LimbNames:
    """One side's bone names; fingers and toes are optional (the hand and foot stand in)."""

    upper_arm: str
    forearm: str
    hand: str
    thigh: str
    shin: str
    foot: str
    index: PointSource | None = None
    pinky: PointSource | None = None
    thumb: PointSource | None = None
    toe: tuple[PointSource, ...] = ()


@dataclasses.dataclass(frozen=True)
class _HandFoot:
    """Hand tips and heel and toe tip relative to a rig's hand and foot bones (their lengths differ by rig)."""

    index_along: float
    pinky_along: float
    thumb_along: float
    toe: PointSource  # a placeholder bone name: the foot's
    heel: Offset


def _limbs(side: str, names: _LimbNames, shape: _HandFoot) -> dict[str, tuple[PointSource, ...]]:
    def tip(finger: PointSource | None, along: float, forward: float) -> tuple[PointSource, ...]:
        fallback = PointSource(names.hand, HEAD, along, (0.0, forward, 0.0))
        return (finger, fallback) if finger is not None else (fallback,)

    foot_tip = dataclasses.replace(shape.toe, bone=names.foot)
    return {
        f"{side}_shoulder": (PointSource(names.upper_arm),), f"{side}_elbow": (PointSource(names.forearm),),
        f"{side}_wrist": (PointSource(names.hand),),
        f"{side}_index": tip(names.index, shape.index_along, 0.1),
        f"{side}_pinky": tip(names.pinky, shape.pinky_along, -0.1),
        f"{side}_thumb": tip(names.thumb, shape.thumb_along, 0.25),
        f"{side}_hip": (PointSource(names.thigh),), f"{side}_knee": (PointSource(names.shin),),
        f"{side}_ankle": (PointSource(names.foot),),
        f"{side}_heel": (PointSource(names.foot, offset=shape.heel),),
        f"{side}_foot_index": (*names.toe, foot_tip),
    }


def _rigify_side(s: str) -> _LimbNames:
    return _LimbNames(f"upper_arm.{s}", f"forearm.{s}", f"hand.{s}", f"thigh.{s}", f"shin.{s}", f"foot.{s}",
                      index=PointSource(f"f_index.02.{s}", TAIL), pinky=PointSource(f"f_pinky.02.{s}", TAIL),
                      thumb=PointSource(f"thumb.02.{s}", TAIL), toe=(PointSource(f"toe.{s}", TAIL),))


def _mixamo_side(s: str) -> _LimbNames:
    return _LimbNames(f"{s}Arm", f"{s}ForeArm", f"{s}Hand", f"{s}UpLeg", f"{s}Leg", f"{s}Foot",
                      index=PointSource(f"{s}HandIndex3"), pinky=PointSource(f"{s}HandPinky3"),
                      thumb=PointSource(f"{s}HandThumb3"),
                      toe=(PointSource(f"{s}Toe_End"), PointSource(f"{s}ToeBase", TAIL)))


def _sample_side(s: str) -> _LimbNames:
    return _LimbNames(f"upper_arm.{s}", f"forearm.{s}", f"hand.{s}", f"thigh.{s}", f"shin.{s}", f"foot.{s}")


# Rigify's and Mixamo's hand bones end at the knuckles, their foot bones at the ball of the foot; the
# sample rig's hand reaches the fingertips and its foot the toes.
_KNUCKLE_HAND = _HandFoot(index_along=1.3, pinky_along=1.2, thumb_along=0.6, toe=PointSource("", TAIL, 0.4), heel=(0.0, -0.45, -0.5))
_SAMPLE_HAND = _HandFoot(index_along=0.75, pinky_along=0.7, thumb_along=0.6, toe=PointSource("", TAIL), heel=(0.0, -0.4, -0.3))


def _mapping(name: str, anchor: str, side, shape: _HandFoot, face: dict) -> RigMapping:
    points = {**face, **_limbs("left", side("L"), shape), **_limbs("right", side("R"), shape)}
    assert set(points) == set(LANDMARK_NAMES), sorted(set(LANDMARK_NAMES) - set(points))
    return RigMapping(name, points, anchor)


BUILT_IN = (
    _mapping("edn sample rig", "head", _sample_side, _SAMPLE_HAND, _face("head")),
    _mapping("Rigify", "spine.006", _rigify_side, _KNUCKLE_HAND, _face("spine.006", ("eye.L", "eye.R"), TAIL)),
    _mapping("Mixamo", "Head", lambda s: _mixamo_side({"L": "Left", "R": "Right"}[s]), _KNUCKLE_HAND,
             _face("Head", ("LeftEye", "RightEye"))),
)


def built_in(name: str) -> RigMapping:
    """The built-in mapping called `name` (one of BUILT_IN's names)."""
    found = [mapping for mapping in BUILT_IN if mapping.name == name]
    if not found:
        raise RigMappingError(f"There is no built-in mapping '{name}'; choose one of {', '.join(m.name for m in BUILT_IN)}.")
    return found[0]


def custom_mapping(entries: Iterable[tuple[str, str, str, float]]) -> RigMapping:
    """A mapping from (landmark, bone, HEAD or TAIL, along) rows, as the sidebar edits it. Landmarks
    it leaves out are never visible; the shoulders, hips and ankles must be given."""
    points: dict[str, tuple[PointSource, ...]] = {}
    for landmark, bone, end, along in entries:
        if landmark not in LANDMARK_INDEX:
            raise RigMappingError(f"'{landmark}' is not a pose landmark; use one of {', '.join(LANDMARK_NAMES)}.")
        points[landmark] = (PointSource(bone, end, float(along)),)
    missing = [name for name in CORE_LANDMARKS if name not in points]
    if missing:
        raise RigMappingError(f"The custom mapping lacks {', '.join(missing)}: map each of them to a bone.")
    return RigMapping("Custom", points)


# -- fitting a mapping to a rig ----------------------------------------------------------------------

def _prefixes(mapping: RigMapping, bones: set[str]) -> list[str]:
    """Name prefixes under which the rig has the mapping's anchor bone, plain names first."""
    if mapping.prefix is not None or not mapping.anchor:
        return [mapping.prefix or ""]
    found = {bone[: -len(mapping.anchor)] for bone in bones if bone.endswith(mapping.anchor)}
    preferred = ["", "ORG-", "DEF-"]
    return [p for p in preferred if p in found] + sorted(found - set(preferred)) or [""]


def _fit(mapping: RigMapping, prefix: str, bones: set[str]) -> tuple[ResolvedMapping, list[str]]:
    """The mapping with the rig's names, and the bones it misses (the last resort of each landmark)."""
    points, missing = {}, []
    for landmark, alternatives in mapping.points.items():
        named = [dataclasses.replace(source, bone=prefix + source.bone) for source in alternatives]
        chosen = next((source for source in named if source.bone in bones), None)
        if chosen is None:
            missing.append(named[-1].bone)
        else:
            points[LANDMARK_INDEX[landmark]] = chosen
    label = f"{mapping.name} ({prefix.rstrip(':-_')} bones)" if prefix else mapping.name
    return ResolvedMapping(label, points), sorted(set(missing))


def _missing_message(rig: str, mapping: str, missing: list[str]) -> str:
    return (f"Armature '{rig}' lacks the bones {', '.join(missing)} that the {mapping} mapping needs. "
            "Rename its bones to match, or map the landmarks yourself with a Custom mapping.")


def resolve(mapping: RigMapping, bone_names: Iterable[str], rig: str = "the armature") -> ResolvedMapping:
    """`mapping` fitted to a rig with these bones; RigMappingError names the bones it misses."""
    bones = set(bone_names)
    best = min((_fit(mapping, prefix, bones) for prefix in _prefixes(mapping, bones)), key=lambda fit: len(fit[1]))
    if best[1]:
        raise RigMappingError(_missing_message(rig, best[0].name, best[1]))
    return best[0]


def detect_mapping(bone_names: Iterable[str], rig: str = "the armature") -> ResolvedMapping:
    """The first built-in mapping the rig has every bone for; else RigMappingError naming the bones
    the closest one misses."""
    bones = set(bone_names)
    fits = [_fit(mapping, prefix, bones) for mapping in BUILT_IN for prefix in _prefixes(mapping, bones)]
    complete = [fit for fit, missing in fits if not missing]
    if complete:
        return complete[0]
    closest, missing = min(fits, key=lambda fit: len(fit[1]))
    known = ", ".join(mapping.name for mapping in BUILT_IN)
    raise RigMappingError(f"{_missing_message(rig, closest.name, missing)} (Built-in mappings: {known}.)")


# -- where each point sits on its bone ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RestBone:
    """A bone at rest in armature space: head, tail, and its axes as the columns of a 3x3 matrix
    (Blender's Bone.matrix_local; the bone points along its Y axis)."""

    head: np.ndarray
    tail: np.ndarray
    axes: np.ndarray


def _rest_point(source: PointSource, bone: RestBone) -> np.ndarray:
    start = bone.tail if source.end == TAIL else bone.head
    return start + source.along * (bone.tail - bone.head)


def character_frame(mapping: ResolvedMapping, rest: Mapping[str, RestBone]) -> np.ndarray:
    """Columns left, forward, up of the character at rest, from its own hips and shoulders (so a rig
    facing any way at rest, and any bone roll, places the face and heels right)."""
    def point(name: str) -> np.ndarray:
        source = mapping.points[LANDMARK_INDEX[name]]
        return _rest_point(source, rest[source.bone])

    left = point("left_hip") - point("right_hip") + point("left_shoulder") - point("right_shoulder")
    up = point("left_shoulder") + point("right_shoulder") - point("left_hip") - point("right_hip")
    left = left / np.linalg.norm(left)
    forward = np.cross(left, up)
    forward /= np.linalg.norm(forward)
    return np.stack([left, forward, np.cross(forward, left)], axis=1)


def bone_space_points(mapping: ResolvedMapping, rest: Mapping[str, RestBone]) -> dict[int, tuple[str, np.ndarray]]:
    """landmark index → (bone, point in that bone's space): the posed point is then the pose bone's
    matrix (armature space) applied to it."""
    frame = character_frame(mapping, rest)
    points = {}
    for index, source in mapping.points.items():
        bone = rest[source.bone]
        length = float(np.linalg.norm(bone.tail - bone.head))
        armature_space = _rest_point(source, bone) - bone.head + length * (frame @ np.asarray(source.offset, dtype=float))
        points[index] = (source.bone, bone.axes.T @ armature_space)
    return points
