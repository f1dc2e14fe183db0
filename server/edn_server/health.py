"""What the authenticated health check reports about the machine: compute device and memory."""
from __future__ import annotations

import os
import sys
import threading


def loaded_torch():
    """torch if some code has finished importing it, else None; never imports it (seconds, hundreds of MB).
    A module still being imported by another thread is in sys.modules half-built, hence the spec check."""
    torch = sys.modules.get("torch")
    if torch is None or getattr(getattr(torch, "__spec__", None), "_initializing", False):
        return None
    return torch


_device: dict | None = None
_detector: threading.Thread | None = None
_detector_lock = threading.Lock()


def _detect_device() -> dict:
    try:
        import torch
    except ImportError:
        return {"type": "cpu", "name": None, "torch": None}
    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count(),
                "torch": torch.__version__}
    return {"type": "cpu", "name": None, "torch": torch.__version__}


def device_info(wait_s: float = 0.0) -> dict:
    """The device heavy jobs will use. The first call starts detection in the background (importing
    torch takes seconds) and answers {"type": "detecting"} until it is known; never run at server start."""
    global _detector
    with _detector_lock:
        if _device is None and _detector is None:
            def detect() -> None:
                global _device
                _device = _detect_device()

            _detector = threading.Thread(target=detect, name="edn-device-detect", daemon=True)
            _detector.start()
    if _device is None and wait_s > 0:
        _detector.join(wait_s)
    return _device if _device is not None else {"type": "detecting"}


def _meminfo_kib(field: str) -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def memory_info() -> dict:
    """Bytes: this process's resident memory, the machine's total and available, and GPU memory when torch uses CUDA."""
    total = available = None
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        pass
    available_kib = _meminfo_kib("MemAvailable")
    if available_kib is not None:
        available = available_kib * 1024
    info = {"process_rss": _rss_bytes(), "system_total": total, "system_available": available}
    torch = loaded_torch()
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        free, gpu_total = torch.cuda.mem_get_info()
        info.update(gpu_total=gpu_total, gpu_free=free, gpu_allocated=torch.cuda.memory_allocated(),
                    gpu_reserved=torch.cuda.memory_reserved())
    return info
