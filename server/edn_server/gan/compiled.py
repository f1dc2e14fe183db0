"""torch.compile for generation, with plain eager as the fallback.

On the CPU, inductor fuses the instance norms, activations and paddings between convolutions:
the preview generator ran 1.43x faster on 2 cores (91% of the machine's fp32 matmul rate against
64% eager; bench/gan.py), after a one-off compile of about 22 s (2 s once inductor's on-disk cache
holds it). Saving ~9 ms a frame, a cold compile pays for itself after some 2400 frames on 2
threads and 1100 on 1, hence `compile_wanted`'s threshold. Compiling needs a working C++ compiler
(CPU) or Triton (CUDA); where that fails the first call says so once and generation goes on
eagerly, so a missing toolchain never costs a job.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

log = logging.getLogger(__name__)

COMPILE_MODES: tuple[str, ...] = ("auto", "on", "off")
AUTO_MIN_FRAMES = 2000  # about a minute of video: below it a cold compile costs more than it saves


def compile_wanted(mode: str, frames: int) -> bool:
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, not {mode!r}")
    return mode == "on" or (mode == "auto" and frames >= AUTO_MIN_FRAMES)


class CompiledOrEager:
    """Calls `module` through torch.compile; on a compile failure, warns once and stays eager."""

    def __init__(self, module: nn.Module, on_fallback: Callable[[str], None] | None = None):
        self.module = module
        self._compiled: Callable | None = torch.compile(module, dynamic=False)
        self._on_fallback = on_fallback or log.warning
        self.fell_back = False

    def __call__(self, *args):
        if self._compiled is not None:
            try:
                return self._compiled(*args)
            except Exception as exc:  # inductor/triton raise many types; eager tells real input errors apart
                self._compiled, self.fell_back = None, True
                self._on_fallback(f"torch.compile could not build the generator ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}); generating without it.")
        return self.module(*args)


def maybe_compiled(module: nn.Module, enabled: bool, on_fallback: Callable[[str], None] | None = None) -> Callable:
    return CompiledOrEager(module, on_fallback) if enabled else module
