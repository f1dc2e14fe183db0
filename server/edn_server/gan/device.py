"""What the server tells about torch's compute device, and giving its cached memory back.

The service asks through `torch_ready()` first, so that a health check or a finished job never
imports torch (seconds, hundreds of MB) just to answer."""
from __future__ import annotations

import sys


def torch_ready() -> bool:
    """True when some code has finished importing torch. A module still being imported by another
    thread sits in sys.modules half-built, hence the spec check. Never imports torch."""
    torch = sys.modules.get("torch")
    return torch is not None and not getattr(getattr(torch, "__spec__", None), "_initializing", False)


def describe_device() -> dict:
    """The device heavy jobs will use (imports torch: call it off the request path)."""
    try:
        import torch
    except ImportError:
        return {"type": "cpu", "name": None, "torch": None}
    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count(),
                "torch": torch.__version__}
    return {"type": "cpu", "name": None, "torch": torch.__version__}


def gpu_memory() -> dict:
    """Bytes of GPU memory in use, when torch is loaded and has used CUDA; else {}."""
    if not torch_ready():
        return {}
    import torch

    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return {}
    free, total = torch.cuda.mem_get_info()
    return {"gpu_total": total, "gpu_free": free, "gpu_allocated": torch.cuda.memory_allocated(),
            "gpu_reserved": torch.cuda.memory_reserved()}


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    if not torch_ready():
        return False
    import torch

    return isinstance(exc, getattr(torch, "OutOfMemoryError", ()))


def release_cached_memory() -> None:
    """Hand CUDA's cached blocks back between heavy jobs (nothing to do before torch is loaded)."""
    if not torch_ready():
        return
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
