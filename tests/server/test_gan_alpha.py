"""Generators that also predict the person's alpha, the mask loss that supervises it, pix2pixHD's
weight initialisation, and configs saved before these options existed."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from edn_server.gan.configs import GeneratorConfig
from edn_server.gan.losses import LossWeights, generator_loss, mask_loss
from edn_server.gan.networks import define_face_generator, define_generator, load_generator_state, split_alpha
from edn_server.gan.train_config import TrainConfig, preset_config
from edn_server.gan.weight_init import init_weights

TINY = GeneratorConfig(ngf=8, n_downsample=2, n_blocks=1)


@pytest.mark.parametrize("local_enhancer", [False, True])
def test_alpha_generator_outputs_colour_and_alpha_in_range(local_enhancer):
    config = dataclasses.replace(TINY, predict_alpha=True, local_enhancer=local_enhancer, n_blocks_local=1)
    torch.manual_seed(0)
    net = define_generator(config)
    label = torch.rand(2, 3, 32, 64) * 2 - 1
    first = net(label, None)
    assert first.shape == (2, 4, 32, 64) and config.out_channels == 4
    colour, alpha = split_alpha(first, config)
    assert colour.shape == (2, 3, 32, 64) and alpha.shape == (2, 1, 32, 64)
    assert colour.min() >= -1 and colour.max() <= 1 and alpha.min() >= 0 and alpha.max() <= 1
    assert 0.05 < alpha.mean() < 0.95  # a sigmoid, not a clipped tanh
    second = net(label, colour)  # the colour is the next frame's previous frame
    assert second.shape == (2, 4, 32, 64)
    (mask_loss(split_alpha(second, config)[1], torch.ones(2, 1, 32, 64)) + second[:, :3].mean()).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_old_generator_configs_and_checkpoints_load_unchanged():
    old = TINY.to_dict()
    del old["predict_alpha"]  # written before the option existed
    config = GeneratorConfig.from_dict(old)
    assert config == TINY and not config.predict_alpha
    saved = define_generator(config).state_dict()
    model = define_generator(GeneratorConfig.from_dict(old))
    load_generator_state(model, saved, old)  # the old dict, as a checkpoint stores it
    assert model(torch.zeros(1, 3, 16, 16), None).shape == (1, 3, 16, 16)
    alpha_model = define_generator(dataclasses.replace(TINY, predict_alpha=True))
    with pytest.raises(ValueError, match="predict_alpha: model has True, checkpoint has False"):
        load_generator_state(alpha_model, saved, old)
    train = preset_config("tiny", (128, 64)).to_dict()
    del train["weight_init"]
    del train["loss_weights"]["mask"], train["generator"]["predict_alpha"]
    restored = TrainConfig.from_dict(train)
    assert restored.weight_init == "default" and restored.loss_weights.mask == 0 and not restored.generator.predict_alpha


def test_mask_loss_and_its_weight_in_the_generator_loss():
    mask = (torch.rand(1, 1, 8, 8) > 0.5).float()
    for kind in ("l1", "bce"):
        assert mask_loss(mask, mask, kind) < 1e-3
        assert mask_loss(1 - mask, mask, kind) > 0.9
    with pytest.raises(ValueError, match="mask loss must be one of"):
        mask_loss(mask, mask, "l2")
    fake = torch.zeros(1, 3, 8, 8)
    features = [[torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)]]  # one layer, then the patch prediction
    _, parts = generator_loss(features, features, fake, fake, LossWeights(vgg=0.0, mask=5.0), alpha=1 - mask, mask=mask)
    assert parts["mask"] == pytest.approx(5.0)
    _, parts = generator_loss(features, features, fake, fake, LossWeights(vgg=0.0))
    assert "mask" not in parts


def test_pix2pixhd_initialisation_keeps_the_face_refiner_an_identity():
    torch.manual_seed(0)
    net = init_weights(define_generator(dataclasses.replace(TINY, norm="batch")), "normal")
    convs = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    weights = torch.cat([w.detach().flatten() for w in convs])
    assert abs(float(weights.std()) - 0.02) < 0.002 and abs(float(weights.mean())) < 0.002
    scales = torch.cat([m.weight.detach() for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(float(scales.mean()) - 1.0) < 0.01
    face = init_weights(define_face_generator(), "normal")
    crop = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(face(crop, crop), crop)  # the refiner still starts as the identity
    with pytest.raises(ValueError, match="weight_init must be one of default, normal"):
        preset_config("tiny", (128, 64)).__class__(weight_init="xavier")
