"""The job kinds this server runs. A new kind is one module with a JobKind, added to builtin_kinds()."""
from __future__ import annotations

from ..jobs import JobKinds, not_implemented_kind
from .pose import EXTRACT_POSES, PREVIEW_POSES


def builtin_kinds() -> JobKinds:
    kinds = JobKinds()
    kinds.register(EXTRACT_POSES)
    kinds.register(PREVIEW_POSES)
    # The API shape is complete now; these answer 501 until the GAN issue lands their run functions.
    kinds.register(not_implemented_kind("train", "train a target's pose-to-video GAN", "training lands with the GAN"))
    kinds.register(not_implemented_kind("transfer", "transfer a source dancer's motion to a trained target",
                                        "transfer lands with the GAN"))
    kinds.register(not_implemented_kind("eval", "score a trained target on held-out frames", "evaluation lands with the GAN"))
    return kinds
