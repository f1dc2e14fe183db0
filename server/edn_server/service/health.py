"""What the authenticated health check reports about the machine: compute device and memory."""
from __future__ import annotations

import os
import threading

from ..gan.device import describe_device, gpu_memory

_device: dict | None = None
_detector: threading.Thread | None = None
_detector_lock = threading.Lock()


def device_info(wait_s: float = 0.0) -> dict:
    """The device heavy jobs will use. The first call starts detection in the background (importing
    torch takes seconds) and answers {"type": "detecting"} until it is known; never run at server start."""
    global _detector
    with _detector_lock:
        if _device is None and _detector is None:
            def detect() -> None:
                global _device
                _device = describe_device()

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
    info.update(gpu_memory())
    return info
