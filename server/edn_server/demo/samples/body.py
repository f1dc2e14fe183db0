"""Body shapes and outfits of the sample dancers, and the joint layout derived from them.

Pure Python (no bpy, no numpy): the Blender child builds the figure from `Skeleton`, and the
choreography uses the same segment lengths to keep the feet on the floor in a crouch.
"""
from __future__ import annotations

import dataclasses

Color = tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class BodyShape:
    """Proportions as fractions of `height` (metres), so one shape scales to any size."""

    height: float = 1.78
    head: float = 0.13  # head height / height; larger reads as younger or stockier
    legs: float = 0.50  # hip-joint height / height
    shoulders: float = 0.21  # shoulder-joint spacing / height
    hips: float = 0.115  # hip-joint spacing / height
    girth: float = 1.0  # limb and torso thickness multiplier
    belly: float = 1.0  # waist depth multiplier


@dataclasses.dataclass(frozen=True)
class Outfit:
    skin: Color = (0.62, 0.42, 0.30)
    shirt: Color = (0.10, 0.30, 0.62)
    trousers: Color = (0.18, 0.18, 0.22)
    shoes: Color = (0.06, 0.05, 0.05)
    hair: Color = (0.10, 0.06, 0.04)
    long_sleeves: bool = False
    long_hair: bool = False


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """Joint heights and segment lengths in metres, for a figure standing at the origin, facing -Y."""

    height: float
    ankle_z: float
    hip_z: float
    waist_z: float
    shoulder_z: float
    neck_top_z: float
    hip_x: float
    shoulder_x: float
    thigh: float
    shin: float
    upper_arm: float
    forearm: float
    hand: float
    foot: float
    head_h: float
    girth: float  # thickness unit: a limb radius is a multiple of this

    @property
    def knee_z(self) -> float:
        return self.hip_z - self.thigh


def skeleton(shape: BodyShape) -> Skeleton:
    h = shape.height
    ankle_z = 0.045 * h
    hip_z = shape.legs * h
    head_h = shape.head * h
    neck_top_z = h - head_h * 0.92  # the jaw overlaps the neck a little
    shoulder_z = neck_top_z - 0.055 * h
    waist_z = hip_z + 0.42 * (shoulder_z - hip_z)
    leg = hip_z - ankle_z
    arm = (shoulder_z - 0.02 * h) - (hip_z - 0.08 * h)  # fingertips reach mid-thigh
    return Skeleton(
        height=h,
        ankle_z=ankle_z,
        hip_z=hip_z,
        waist_z=waist_z,
        shoulder_z=shoulder_z,
        neck_top_z=neck_top_z,
        hip_x=shape.hips * h / 2,
        shoulder_x=shape.shoulders * h / 2,
        thigh=0.51 * leg,
        shin=0.49 * leg,
        upper_arm=0.43 * arm,
        forearm=0.36 * arm,
        hand=0.21 * arm,
        foot=0.15 * h,
        head_h=head_h,
        girth=0.01 * h * shape.girth,
    )
