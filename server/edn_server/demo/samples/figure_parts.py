"""The shapes that make the figure read as a person to a pose detector: a face with eyes, brows,
nose, mouth and ears; hair; a clothed torso; tapered limbs with round joints; hands with thumbs;
shoes. Runs inside the Blender child only; sizes are in units of the skeleton's girth."""
from __future__ import annotations

from collections.abc import Iterator

from mathutils import Vector

from .body import Outfit, Skeleton


def _darker(color, factor: float = 0.8):
    return tuple(c * factor for c in color)


def add_body_parts(b, sk: Skeleton, outfit: Outfit, bones: dict, shape_belly: float = 1.0) -> Iterator[tuple[str, object]]:
    g = sk.girth
    skin = b.material("skin", outfit.skin)
    shirt = b.material("shirt", outfit.shirt)
    trousers = b.material("trousers", outfit.trousers)
    shoes = b.material("shoes", outfit.shoes)
    hair = b.material("hair", outfit.hair)
    yield from _torso(b, sk, g, shape_belly, shirt, trousers, skin)
    yield from _head(b, sk, outfit, skin, hair)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        yield from _arm(b, sk, g, side, sign, bones, skin, shirt if outfit.long_sleeves else skin, shirt)
        yield from _leg(b, sk, g, side, bones, trousers, shoes)


def _torso(b, sk: Skeleton, g: float, belly: float, shirt, trousers, skin):
    h = sk.height
    chest_h = sk.shoulder_z - sk.waist_z
    yield "hips", b.ellipsoid("pelvis", (0, 0.2 * g, sk.hip_z + 0.025 * h), (sk.hip_x + 4.6 * g, 6.0 * g, 0.08 * h), trousers)
    yield "spine", b.ellipsoid("belly", (0, 0.1 * g, (sk.hip_z + sk.waist_z) / 2 + 0.035 * h),
                               (sk.hip_x + 3.6 * g, 5.4 * g * belly, (sk.waist_z - sk.hip_z) * 0.8), shirt)
    yield "chest", b.ellipsoid("chest", (0, 0.3 * g, sk.waist_z + chest_h * 0.5),
                               (sk.shoulder_x - 1.2 * g, 5.9 * g, chest_h * 0.62), shirt)
    yield "chest", b.ellipsoid("upper_chest", (0, 0.6 * g, sk.shoulder_z - 0.028 * h), (sk.shoulder_x, 4.6 * g, 3.4 * g), shirt)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        yield "chest", b.ellipsoid(f"shoulder.{side}", (sign * sk.shoulder_x, 0.3 * g, sk.shoulder_z - 0.022 * h),
                                   (3.5 * g, 3.5 * g, 3.4 * g), shirt)
    yield "neck", b.limb("neck", (0, 0.4 * g, sk.neck_top_z + 1.5 * g), (0, 0.4 * g, sk.shoulder_z - 2 * g), 2.9 * g, 3.2 * g, skin)


def _head(b, sk: Skeleton, outfit: Outfit, skin, hair):
    hh = sk.head_h
    c = Vector((0, 0, sk.neck_top_z + hh * 0.47))

    def at(x, y, z):
        return c + Vector((x * hh, y * hh, z * hh))

    dark = b.material("dark", (0.03, 0.025, 0.02))
    white = b.material("eye_white", (0.85, 0.85, 0.82))
    lips = b.material("lips", (0.55, 0.22, 0.20))
    nose = b.material("nose", _darker(outfit.skin, 0.9))
    yield "head", b.ellipsoid("skull", c, (0.34 * hh, 0.42 * hh, 0.5 * hh), skin)
    yield "head", b.ellipsoid("hair", at(0, 0.07, 0.1), (0.365 * hh, 0.43 * hh, 0.45 * hh), hair)
    if outfit.long_hair:
        yield "head", b.ellipsoid("hair_long", at(0, 0.22, -0.25), (0.36 * hh, 0.25 * hh, 0.55 * hh), hair)
    yield "head", b.ellipsoid("nose", at(0, -0.43, -0.04), (0.05 * hh, 0.07 * hh, 0.09 * hh), nose)
    yield "head", b.ellipsoid("mouth", at(0, -0.375, -0.22), (0.11 * hh, 0.035 * hh, 0.03 * hh), lips)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        yield "head", b.ellipsoid(f"eye.{side}", at(sign * 0.13, -0.355, 0.06), (0.06 * hh, 0.045 * hh, 0.045 * hh), white)
        yield "head", b.ellipsoid(f"pupil.{side}", at(sign * 0.13, -0.39, 0.06), (0.03 * hh, 0.02 * hh, 0.03 * hh), dark)
        yield "head", b.ellipsoid(f"brow.{side}", at(sign * 0.135, -0.37, 0.15), (0.075 * hh, 0.025 * hh, 0.018 * hh), hair)
        yield "head", b.ellipsoid(f"ear.{side}", at(sign * 0.335, 0.02, 0.0), (0.035 * hh, 0.075 * hh, 0.11 * hh), nose)


def _arm(b, sk: Skeleton, g: float, side: str, sign: float, bones: dict, skin, sleeve_lower, shirt):
    shoulder, elbow, _ = bones[f"upper_arm.{side}"]
    _, wrist, _ = bones[f"forearm.{side}"]
    _, fingertip, _ = bones[f"hand.{side}"]
    mid = shoulder.lerp(elbow, 0.5)
    yield f"upper_arm.{side}", b.limb(f"sleeve.{side}", shoulder, mid, 3.5 * g, 3.1 * g, shirt)
    yield f"upper_arm.{side}", b.limb(f"upper_arm.{side}", mid, elbow, 3.0 * g, 2.6 * g, sleeve_lower)
    yield f"forearm.{side}", b.ellipsoid(f"elbow.{side}", elbow, (2.6 * g,) * 3, sleeve_lower)
    yield f"forearm.{side}", b.limb(f"forearm.{side}", elbow, wrist, 2.6 * g, 1.9 * g, sleeve_lower)
    yield f"hand.{side}", b.ellipsoid(f"wrist.{side}", wrist, (1.9 * g,) * 3, skin)
    palm = wrist.lerp(fingertip, 0.45)
    # Palms face the thighs when the arm hangs: thin across X, wide front to back.
    yield f"hand.{side}", b.ellipsoid(f"hand.{side}", palm, (1.2 * g, 2.4 * g, sk.hand * 0.5), skin)
    thumb_root = wrist.lerp(fingertip, 0.25) + Vector((0, -1.8 * g, 0))
    thumb_tip = thumb_root + Vector((-sign * 0.6 * g, -1.4 * g, -sk.hand * 0.4))
    yield f"hand.{side}", b.limb(f"thumb.{side}", thumb_root, thumb_tip, 0.85 * g, 0.7 * g, skin)


def _leg(b, sk: Skeleton, g: float, side: str, bones: dict, trousers, shoes):
    hip, knee, _ = bones[f"thigh.{side}"]
    _, ankle, _ = bones[f"shin.{side}"]
    yield f"thigh.{side}", b.limb(f"thigh.{side}", hip, knee, 5.4 * g, 3.9 * g, trousers)
    yield f"thigh.{side}", b.ellipsoid(f"hip.{side}", hip, (5.4 * g,) * 3, trousers)
    yield f"shin.{side}", b.ellipsoid(f"knee.{side}", knee, (3.9 * g,) * 3, trousers)
    yield f"shin.{side}", b.limb(f"shin.{side}", knee, ankle, 3.8 * g, 2.9 * g, trousers)
    yield f"foot.{side}", b.ellipsoid(f"ankle.{side}", ankle, (2.7 * g,) * 3, shoes)
    toe_reach = sk.foot * 0.72
    shoe_center = Vector((ankle.x, -(toe_reach - sk.foot * 0.28) / 2 + 0.0, sk.ankle_z * 0.55))
    yield f"foot.{side}", b.ellipsoid(f"shoe.{side}", shoe_center, (2.9 * g, sk.foot * 0.5, sk.ankle_z * 0.6), shoes)
