"""The job kinds this server runs. A new kind is one module with a JobKind, added to builtin_kinds()."""
from __future__ import annotations

from ..job_contract import JobKinds
from .pose import EXTRACT_POSES, PREVIEW_POSES
from .train import TRAIN
from .transfer import EVAL, TRANSFER


def builtin_kinds() -> JobKinds:
    kinds = JobKinds()
    for kind in (EXTRACT_POSES, PREVIEW_POSES, TRAIN, TRANSFER, EVAL):
        kinds.register(kind)
    return kinds
