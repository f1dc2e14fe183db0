"""VGG19 features for pix2pixHD's perceptual loss, without torchvision.

The layers follow torchvision's `vgg19().features` numbering, so its official ImageNet weights
(`vgg19-dcbce000.pth`, keys `features.N.weight/bias`) load as they are. Weights come from a user
path (parameter or EDN_VGG19_WEIGHTS), the user cache, or a download from download.pytorch.org
checked against the sha256 prefix in the file name, as torchvision does. The perceptual loss is
optional: when no weights can be had, load_vgg19 logs one warning and returns None.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_file
from ..config import user_cache_dir
from ..errors import WEIGHTS_INVALID, WEIGHTS_MISSING, EdnError

log = logging.getLogger(__name__)

VGG19_FILE = "vgg19-dcbce000.pth"
VGG19_BASE_URL = "https://download.pytorch.org/models"
WEIGHTS_ENV = "EDN_VGG19_WEIGHTS"
BASE_URL_ENV = "EDN_VGG19_BASE_URL"
DOWNLOAD_TIMEOUT_S = 20.0

# torchvision's configuration "E" up to relu5_1 (features.29); the layers after it are unused.
_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
# Slices ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (torchvision indices 1, 6, 11, 20, 29).
SLICE_ENDS = (2, 7, 12, 21, 30)
LAYER_NAMES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# pix2pixHD's perceptual loss weights: the deepest, most semantic layer counts most.
LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_warned_unavailable = False


class VGG19Features(nn.Module):
    """Frozen VGG19 trunk: [-1, 1] RGB images -> the five relu*_1 feature maps."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        assert len(self.features) == SLICE_ENDS[-1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # a fixed feature extractor: never in training mode

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] generator range -> ImageNet-normalised [0, 1] RGB, what the weights were trained on."""
        return ((images + 1.0) * 0.5 - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalize(images)
        outputs, start = [], 0
        for end in SLICE_ENDS:
            for index in range(start, end):
                x = self.features[index](x)
            outputs.append(x)
            start = end
        return outputs

    def load_torchvision_state(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Take the `features.N` tensors this trunk uses from a torchvision vgg19 state dict
        (later layers and the classifier are ignored)."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        misshapen = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or misshapen:
            raise EdnError(WEIGHTS_INVALID, (
                f"{source} is not a torchvision VGG19 state dict (missing: {', '.join(missing[:4]) or 'none'}; "
                f"wrong shape: {', '.join(misshapen[:4]) or 'none'}); point {WEIGHTS_ENV} at the official {VGG19_FILE}"
            ))
        self.load_state_dict({k: state[k] for k in own})


def expected_sha256_prefix(file_name: str) -> str:
    """torchvision names weight files `<name>-<first hex digits of the sha256>.pth`."""
    match = re.search(r"-([0-9a-f]{8,64})\.pth$", file_name)
    if not match:
        raise ValueError(f"weights file name {file_name!r} carries no '-<sha256 prefix>.pth' suffix to check against")
    return match.group(1)


def download_weights(url: str, destination: Path, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download `url` to `destination`, keeping it only if its sha256 starts with the prefix in
    the file name. Nothing is left behind on failure."""
    prefix = expected_sha256_prefix(destination.name)
    digest = hashlib.sha256()
    log.info("downloading VGG19 weights (about 550 MB) from %s to %s", url, destination)
    try:
        with atomic_file(destination) as tmp, urllib.request.urlopen(url, timeout=timeout_s) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            out.close()
            if not digest.hexdigest().startswith(prefix):
                raise EdnError(WEIGHTS_INVALID, (
                    f"the file downloaded from {url} has sha256 {digest.hexdigest()[:16]}…, expected it to start with {prefix}; "
                    f"it was discarded. Download {destination.name} yourself and set {WEIGHTS_ENV} to its path"
                ))
    except (urllib.error.URLError, OSError) as error:
        raise EdnError(WEIGHTS_MISSING, (
            f"could not download VGG19 weights from {url} ({error}); download {destination.name} yourself and set "
            f"{WEIGHTS_ENV} to its path, or set {BASE_URL_ENV} to a mirror"
        )) from error
    return destination


def vgg19_weights_path(weights: str | os.PathLike | None = None, *, base_url: str | None = None, file_name: str = VGG19_FILE,
                       cache_dir: Path | None = None, allow_download: bool = True, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """The weights file to use: `weights`, else $EDN_VGG19_WEIGHTS, else the cached download
    (user_cache_dir()/models), else a fresh download from `base_url` / $EDN_VGG19_BASE_URL /
    download.pytorch.org."""
    chosen = weights if weights is not None else os.environ.get(WEIGHTS_ENV) or None
    if chosen is not None:
        path = Path(chosen).expanduser()
        if not path.is_file():
            source = "weights" if weights is not None else WEIGHTS_ENV
            raise EdnError(WEIGHTS_MISSING,
                           f"VGG19 weights file {path} (from {source}) does not exist; fix the path or unset {WEIGHTS_ENV}")
        return path
    cached = (cache_dir or user_cache_dir() / "models") / file_name
    if cached.is_file():
        return cached
    if not allow_download:
        raise EdnError(WEIGHTS_MISSING, f"VGG19 weights are not in {cached.parent}; set {WEIGHTS_ENV} to a copy of {VGG19_FILE}")
    base = (base_url or os.environ.get(BASE_URL_ENV) or VGG19_BASE_URL).rstrip("/")
    return download_weights(f"{base}/{file_name}", cached, timeout_s)


def read_vgg19(path: Path) -> VGG19Features:
    """A VGG19Features with the weights of `path` (a torchvision vgg19 state dict)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged or foreign files
        raise EdnError(WEIGHTS_INVALID,
                       f"cannot read VGG19 weights {path} ({error}); delete the file or point {WEIGHTS_ENV} at a good copy") from error
    if not isinstance(state, dict):
        raise EdnError(WEIGHTS_INVALID, f"{path} holds a {type(state).__name__}, not a state dict; point {WEIGHTS_ENV} at {VGG19_FILE}")
    model = VGG19Features()
    model.load_torchvision_state(state, str(path))
    return model


def load_vgg19(weights: str | os.PathLike | None = None, *, device: torch.device | str = "cpu", **locate) -> VGG19Features | None:
    """The perceptual-loss network, or None (with one warning per process) when its weights
    cannot be found, downloaded or read, so training goes on without the VGG loss.
    `locate` takes vgg19_weights_path's keyword arguments."""
    global _warned_unavailable
    try:
        return read_vgg19(vgg19_weights_path(weights, **locate)).to(device)
    except EdnError as error:
        if not _warned_unavailable:
            _warned_unavailable = True
            log.warning("training without the VGG perceptual loss: %s", error)
        return None
