"""The GAN's losses, a tiny generator + discriminator overfitting one batch, and the VGG19
weights' lookup, download, checksum and fallback (served from a local HTTP server)."""
from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from edn_server.errors import WEIGHTS_INVALID, WEIGHTS_MISSING, EdnError
from edn_server.gan import vgg
from edn_server.gan.losses import (
    LossWeights,
    VGGLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    l1_loss,
    lsgan_loss,
)
from edn_server.gan.networks import GeneratorConfig, define_discriminator, define_generator, pair_input


def fake_features(num_d: int, n_layers: int, value: float = 0.0) -> list[list[torch.Tensor]]:
    return [[torch.full((2, 4, 5, 5), value) for _ in range(n_layers + 1)] + [torch.full((2, 1, 3, 3), value)] for _ in range(num_d)]


# --- GAN losses -------------------------------------------------------------------------------

def test_lsgan_loss_is_squared_distance_to_the_target_summed_over_scales():
    assert lsgan_loss(fake_features(3, 2, 1.0), True) == 0
    assert lsgan_loss(fake_features(3, 2, 0.0), False) == 0
    assert lsgan_loss(fake_features(3, 2, 0.5), True).item() == pytest.approx(3 * 0.25)
    assert discriminator_loss(fake_features(2, 2, 1.0), fake_features(2, 2, 1.0)).item() == pytest.approx(0.5 * 2 * 1.0)


@pytest.mark.parametrize("num_d,n_layers", [(1, 3), (2, 3), (3, 2)])
def test_feature_matching_weights_follow_pix2pixhd(num_d, n_layers):
    real = fake_features(num_d, n_layers, 0.0)
    assert feature_matching_loss(fake_features(num_d, n_layers, 0.0), real) == 0
    # every feature one unit off: (n_layers + 1) layers * 4 / (n_layers + 1) per scale, averaged over scales
    assert feature_matching_loss(fake_features(num_d, n_layers, 1.0), real).item() == pytest.approx(4.0)
    # the patch predictions themselves are not matched
    shifted = fake_features(num_d, n_layers, 0.0)
    for scale in shifted:
        scale[-1] = scale[-1] + 5
    assert feature_matching_loss(shifted, real) == 0


def test_feature_matching_trains_only_the_generator_side():
    disc = define_discriminator(6, ndf=8, n_layers=2, num_d=2)
    label = torch.rand(1, 3, 32, 32)
    fake = torch.rand(1, 3, 32, 32, requires_grad=True)
    real = torch.rand(1, 3, 32, 32, requires_grad=True)
    loss = feature_matching_loss(disc(pair_input(label, fake)), disc(pair_input(label, real)))
    assert loss > 0
    loss.backward()
    assert fake.grad.abs().sum() > 0 and real.grad is None


def test_generator_loss_weights_and_optional_terms():
    pred_fake, pred_real = fake_features(2, 2, 0.5), fake_features(2, 2, 0.0)
    fake, real = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    total, parts = generator_loss(pred_fake, pred_real, fake, real, LossWeights(gan=2.0, feature_matching=10.0, vgg=10.0, l1=0.0))
    assert parts == pytest.approx({"gan": 2 * 2 * 0.25, "feature_matching": 10 * 4 * 0.5})  # no VGG network given, no L1
    assert total.item() == pytest.approx(sum(parts.values()))
    _, parts = generator_loss(pred_fake, pred_real, fake, real, LossWeights(l1=3.0))
    assert parts["l1"] == pytest.approx(3.0) and l1_loss(fake, real) == 1.0
    assert LossWeights.from_dict(LossWeights(vgg=0).to_dict()) == LossWeights(vgg=0)


def smooth_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Low-frequency images: something a tiny generator can learn in a few dozen steps."""
    coarse = torch.randn(n, 3, h // 8, w // 8, generator=torch.Generator().manual_seed(seed))
    return torch.tanh(2 * F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False))


def test_tiny_gan_overfits_one_batch():
    torch.manual_seed(0)
    gen = define_generator(GeneratorConfig(ngf=8, n_downsample=2, n_blocks=2))
    disc = define_discriminator(6, ndf=8, n_layers=2, num_d=2)
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.999))
    label, real = smooth_images(2, 32, 64, seed=1), smooth_images(2, 32, 64, seed=2)
    weights = LossWeights(vgg=0.0, l1=10.0)
    history = []
    for _ in range(60):
        fake = gen(label)
        total, parts = generator_loss(disc(pair_input(label, fake)), disc(pair_input(label, real)), fake, real, weights)
        opt_g.zero_grad()
        total.backward()
        opt_g.step()
        d_loss = discriminator_loss(disc(pair_input(label, real)), disc(pair_input(label, fake.detach())))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        history.append(parts)
    first, last = history[0], history[-1]
    # measured: L1 0.67 -> 0.08, feature matching 12.9 -> 1.6 (weighted), seeds 0-4 all pass
    assert last["l1"] < first["l1"] / 4, (first, last)
    assert last["feature_matching"] < first["feature_matching"] / 3, (first, last)
    assert torch.isfinite(d_loss)


# --- VGG19 ------------------------------------------------------------------------------------

TORCHVISION_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)


def test_vgg_layout_matches_torchvision_numbering_and_slices():
    model = vgg.VGG19Features()
    assert set(model.state_dict()) == {f"features.{i}.{p}" for i in TORCHVISION_CONVS for p in ("weight", "bias")}
    features = model(torch.zeros(1, 3, 64, 64))
    assert [(f.shape[1], f.shape[-1]) for f in features] == [(64, 64), (128, 32), (256, 16), (512, 8), (512, 4)]
    assert all(f.min() >= 0 for f in features)  # every slice ends at a ReLU
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.train().training


def test_vgg_normalises_generator_range_to_imagenet_statistics():
    model = vgg.VGG19Features()
    mean_image = (torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1) * 2 - 1).expand(1, 3, 4, 4)
    torch.testing.assert_close(model.normalize(mean_image), torch.zeros(1, 3, 4, 4), atol=1e-6, rtol=0)
    white = model.normalize(torch.ones(1, 3, 1, 1)).flatten()
    torch.testing.assert_close(white, (1 - torch.tensor(vgg.IMAGENET_MEAN)) / torch.tensor(vgg.IMAGENET_STD))


def test_vgg_loss_is_zero_for_identical_images_and_trains_only_the_generator():
    loss_fn = VGGLoss(vgg.VGG19Features())
    real = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss_fn(real.clone(), real) == 0
    fake = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    loss = loss_fn(fake, real)
    loss.backward()
    assert loss > 0 and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.parameters())


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor], str]:
    """A torchvision-shaped vgg19 state dict of random weights (later layers and the classifier
    included, as in the real file), saved under the name torchvision would give it."""
    torch.manual_seed(0)
    state = dict(vgg.VGG19Features().state_dict())
    state.update({"features.30.weight": torch.zeros(2, 2, 3, 3), "features.34.bias": torch.zeros(2), "classifier.6.bias": torch.zeros(10)})
    folder = tmp_path_factory.mktemp("served")
    raw = folder / "raw.pth"
    torch.save(state, raw)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    assert not digest.startswith("deadbeef")
    (folder / f"vgg19-{digest[:8]}.pth").write_bytes(raw.read_bytes())
    (folder / "vgg19-deadbeef.pth").write_bytes(raw.read_bytes())  # same bytes, wrong checksum in the name
    return folder, state, f"vgg19-{digest[:8]}.pth"


@pytest.fixture(scope="module")
def weights_server(weights_file):
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(weights_file[0])))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    server.shutdown()
    server.server_close()


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    """An empty user cache, no user weights, and a fresh once-per-process warning."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(vgg.WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(vgg.BASE_URL_ENV, raising=False)
    monkeypatch.setattr(vgg, "_warned_unavailable", False)
    return tmp_path / "cache" / "edn" / "models"


def test_sha256_prefix_comes_from_the_file_name():
    assert vgg.expected_sha256_prefix(vgg.VGG19_FILE) == "dcbce000"
    assert vgg.expected_sha256_prefix("vgg19-0123abcd4567.pth") == "0123abcd4567"
    with pytest.raises(ValueError, match="sha256 prefix"):
        vgg.expected_sha256_prefix("vgg19.pth")


def test_download_with_matching_checksum_is_cached_and_loaded(weights_file, weights_server, clean_env, monkeypatch):
    _, state, good_name = weights_file
    base_url, requests = weights_server
    monkeypatch.setenv(vgg.BASE_URL_ENV, base_url)
    before = len(requests)
    model = vgg.load_vgg19(file_name=good_name)
    assert model is not None
    assert torch.equal(model.features[28].weight, state["features.28.weight"])
    assert (clean_env / good_name).is_file() and sorted(p.name for p in clean_env.iterdir()) == [good_name]
    assert vgg.load_vgg19(file_name=good_name) is not None
    assert len(requests) == before + 1, "the second load must come from the cache"


def test_download_with_wrong_checksum_is_discarded_and_training_goes_on(weights_file, weights_server, clean_env, caplog):
    base_url, _ = weights_server
    with pytest.raises(EdnError) as info:
        vgg.vgg19_weights_path(base_url=base_url, file_name="vgg19-deadbeef.pth")
    assert info.value.code == WEIGHTS_INVALID
    assert "expected it to start with deadbeef" in info.value.message and vgg.WEIGHTS_ENV in info.value.message
    assert not clean_env.exists() or not any(clean_env.iterdir()), "nothing may be cached, not even a partial file"

    with caplog.at_level(logging.WARNING, logger=vgg.__name__):
        assert vgg.load_vgg19(base_url=base_url, file_name="vgg19-deadbeef.pth") is None
        assert vgg.load_vgg19(base_url=base_url, file_name="vgg19-deadbeef.pth") is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "without the VGG perceptual loss" in warnings[0].getMessage()


def test_unreachable_server_falls_back_quickly(clean_env, caplog):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(EdnError) as info:
        vgg.vgg19_weights_path(base_url=f"http://127.0.0.1:{port}", timeout_s=2)
    assert info.value.code == WEIGHTS_MISSING and vgg.BASE_URL_ENV in info.value.message
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=vgg.__name__):
        assert vgg.load_vgg19(base_url=f"http://127.0.0.1:{port}", timeout_s=2) is None
    assert time.monotonic() - started < 5
    assert len(caplog.records) == 1


def test_user_weights_path_wins_over_cache_and_download(weights_file, clean_env, monkeypatch, tmp_path):
    folder, state, good_name = weights_file
    monkeypatch.setenv(vgg.WEIGHTS_ENV, str(folder / good_name))
    monkeypatch.setenv(vgg.BASE_URL_ENV, "http://127.0.0.1:9/")  # must not be used
    model = vgg.load_vgg19()
    assert model is not None and torch.equal(model.features[0].bias, state["features.0.bias"])
    assert not clean_env.exists()

    monkeypatch.setenv(vgg.WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(EdnError) as info:
        vgg.vgg19_weights_path()
    assert info.value.code == WEIGHTS_MISSING and "missing.pth" in info.value.message and vgg.WEIGHTS_ENV in info.value.message


def test_files_that_are_not_vgg19_weights_are_rejected(tmp_path, clean_env, caplog):
    foreign = tmp_path / "generator.pth"
    torch.save(define_generator(GeneratorConfig(ngf=8, n_downsample=2, n_blocks=1)).state_dict(), foreign)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    for path in (foreign, garbage):
        with pytest.raises(EdnError) as info:
            vgg.read_vgg19(path)
        assert info.value.code == WEIGHTS_INVALID and str(path) in info.value.message
    with caplog.at_level(logging.WARNING, logger=vgg.__name__):
        assert vgg.load_vgg19(foreign) is None
    assert len(caplog.records) == 1
