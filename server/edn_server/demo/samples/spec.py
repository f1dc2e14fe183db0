"""What a sample clip looks like: every parameter that changes its pixels, as plain JSON-able data.

The cache key hashes `ClipSpec.to_json()` together with RENDER_VERSION, so any change to a spec,
and any bump of RENDER_VERSION (bump it when the figure, scene or choreography code changes the
look), renders the clip anew. Pure Python: the Blender child reads the same spec.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

from .body import BodyShape, Outfit

RENDER_VERSION = 1

# Full clips are 512x384: landscape leaves room to walk across, the dancer stands ~230 px tall
# (plenty for the 256 px landmark crop the detector uses), it downsizes cleanly to the 256 px
# preview height the GAN trains at, and it renders ~2x faster than 768x576.
FULL_SIZE = (512, 384)
QUICK_SIZE = (256, 256)


@dataclasses.dataclass(frozen=True)
class Stage:
    """The floor rectangle the dancer moves in, metres; the camera looks along +Y at x = 0."""

    center_x: float = 0.0
    center_y: float = 0.0
    half_width: float = 1.4
    half_depth: float = 1.0


@dataclasses.dataclass(frozen=True)
class Camera:
    location: tuple[float, float, float] = (0.0, -6.4, 1.0)
    look_at: tuple[float, float, float] = (0.0, 0.0, 0.85)
    vertical_fov_deg: float = 29.0  # kept for every aspect ratio; square clips just crop the sides


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    role: str  # "target" (varied poses, roams the floor) or "source" (dances near one spot)
    seed: int
    size: tuple[int, int]
    fps: float
    frame_count: int
    body: BodyShape
    outfit: Outfit
    stage: Stage
    camera: Camera = Camera()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClipSpec:
        raw = json.loads(text)
        return cls(
            role=raw["role"],
            seed=int(raw["seed"]),
            size=tuple(raw["size"]),
            fps=float(raw["fps"]),
            frame_count=int(raw["frame_count"]),
            body=BodyShape(**raw["body"]),
            outfit=Outfit(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw["outfit"].items()}),
            stage=Stage(**raw["stage"]),
            camera=Camera(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw["camera"].items()}),
        )

    def cache_key(self) -> str:
        digest = hashlib.sha256(f"render-v{RENDER_VERSION}\n{self.to_json()}".encode()).hexdigest()
        return f"{self.role}-{digest[:16]}"


TARGET_BODY = BodyShape(height=1.80, head=0.13, legs=0.51, shoulders=0.21, hips=0.115, girth=1.0)
TARGET_OUTFIT = Outfit(skin=(0.60, 0.40, 0.28), shirt=(0.72, 0.16, 0.12), trousers=(0.12, 0.16, 0.32),
                       shoes=(0.08, 0.07, 0.06), hair=(0.09, 0.06, 0.04))
# The source is a clearly different person: 25 cm shorter, bigger head, shorter legs, stockier,
# other colours and long hair, dancing off-centre and further back.
SOURCE_BODY = BodyShape(height=1.55, head=0.145, legs=0.47, shoulders=0.20, hips=0.13, girth=1.25, belly=1.2)
SOURCE_OUTFIT = Outfit(skin=(0.78, 0.55, 0.42), shirt=(0.20, 0.52, 0.22), trousers=(0.45, 0.36, 0.22),
                       shoes=(0.55, 0.55, 0.58), hair=(0.30, 0.16, 0.06), long_sleeves=True, long_hair=True)


def target_spec(seed: int = 0, quick: bool = False) -> ClipSpec:
    return ClipSpec(role="target", seed=seed, size=QUICK_SIZE if quick else FULL_SIZE, fps=30.0,
                    frame_count=60 if quick else 900, body=TARGET_BODY, outfit=TARGET_OUTFIT,
                    stage=Stage(center_x=0.0, center_y=-0.1, half_width=1.3, half_depth=1.1))


def source_spec(seed: int = 0, quick: bool = False) -> ClipSpec:
    return ClipSpec(role="source", seed=seed, size=QUICK_SIZE if quick else FULL_SIZE, fps=30.0,
                    frame_count=45 if quick else 300, body=SOURCE_BODY, outfit=SOURCE_OUTFIT,
                    stage=Stage(center_x=0.75, center_y=1.6, half_width=0.25, half_depth=0.2))
