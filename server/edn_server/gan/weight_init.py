"""Weight initialisation schemes for the networks.

"default" keeps PyTorch's own (Kaiming-uniform) initialisation, which every model trained before
this option used. "normal" is pix2pixHD's: convolution weights ~ N(0, 0.02), normalisation scales
~ N(1, 0.02), biases 0. Modules that must start as an identity (the face residual generator's
zeroed last layer) are restored to it afterwards.
"""
from __future__ import annotations

from torch import nn

INIT_SCHEMES = ("default", "normal")
_STD = 0.02


def init_weights(module: nn.Module, scheme: str = "default") -> nn.Module:
    """Initialise `module`'s weights in place by `scheme`; returns it."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"weight initialisation must be one of {', '.join(INIT_SCHEMES)}, got {scheme!r}")
    if scheme == "default":
        return module
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(layer.weight, 0.0, _STD)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d | nn.InstanceNorm2d | nn.GroupNorm) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, _STD)
            nn.init.zeros_(layer.bias)
    for layer in module.modules():
        start = getattr(layer, "start_as_identity", None)
        if callable(start):
            start()
    return module
