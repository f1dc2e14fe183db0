"""The GAN's networks on tiny configs: shapes, ranges, conditioning, face boxes, checkpoints."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from edn_server.gan.networks import (
    DiscriminatorConfig,
    FaceBox,
    FaceGeneratorConfig,
    GeneratorConfig,
    GlobalGenerator,
    LocalEnhancer,
    crop,
    define_discriminator,
    define_face_discriminator,
    define_face_generator,
    define_generator,
    define_temporal_discriminator,
    face_box,
    generator_gflops,
    load_generator_state,
    pair_input,
    paste,
    temporal_input,
)
from torch import nn

TINY = GeneratorConfig(ngf=8, n_downsample=2, n_blocks=1)
TINY_LOCAL = GeneratorConfig(ngf=8, n_downsample=2, n_blocks=1, local_enhancer=True, n_blocks_local=1)



def images(n: int, h: int, w: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def generator() -> GlobalGenerator:
    torch.manual_seed(0)
    return define_generator(TINY).eval()


# --- generators -------------------------------------------------------------------------------

@pytest.mark.parametrize("height,width", [(32, 64), (64, 64), (36, 100), (64, 24)])
def test_generator_keeps_frame_size_and_outputs_in_tanh_range(generator, height, width):
    out = generator(images(2, height, width) * 3)  # labels beyond [-1, 1] must not escape the range either
    assert out.shape == (2, 3, height, width)
    assert out.min() >= -1 and out.max() <= 1
    assert out.std() > 0.01, "an untrained generator should still produce a varying image"


@pytest.mark.parametrize("height,width", [(32, 66), (30, 64)])
def test_generator_rejects_sizes_that_do_not_divide_and_names_the_multiple(generator, height, width):
    with pytest.raises(ValueError, match="multiples of 4"):
        generator(images(1, height, width))


def test_previous_frame_changes_the_output_and_defaults_to_zeros(generator):
    label = images(1, 32, 64)
    with torch.no_grad():
        first = generator(label)
        explicit_zero = generator(label, torch.zeros_like(label))
        after_a = generator(label, images(1, 32, 64, seed=1))
        after_b = generator(label, images(1, 32, 64, seed=2))
    assert torch.equal(first, explicit_zero)
    assert (after_a - after_b).abs().mean() > 1e-3
    assert generator.body[0][1].in_channels == 6  # label + previous frame


def test_generator_without_previous_frame_takes_only_the_label():
    model = define_generator(GeneratorConfig(ngf=8, n_downsample=2, n_blocks=1, use_previous_frame=False))
    assert model.body[0][1].in_channels == 3
    assert model(images(1, 32, 32)).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="use_previous_frame=False"):
        model(images(1, 32, 32), images(1, 32, 32))


def test_generator_rejects_wrong_channels_and_previous_frame_shape(generator):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        generator(images(1, 32, 32, channels=4))
    with pytest.raises(ValueError, match="previous frame"):
        generator(images(1, 32, 32), images(1, 32, 64))


def test_channels_last_gives_the_same_frames(generator):
    label, previous = images(2, 32, 64), images(2, 32, 64, seed=3)
    with torch.no_grad():
        reference = generator(label, previous)
        model = define_generator(TINY)
        model.load_state_dict(generator.state_dict())
        model = model.eval().to(memory_format=torch.channels_last)
        fast = model(label.to(memory_format=torch.channels_last), previous.to(memory_format=torch.channels_last))
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-4)


def test_local_enhancer_works_at_twice_the_global_resolution():
    torch.manual_seed(0)
    model = define_generator(TINY_LOCAL)
    assert isinstance(model, LocalEnhancer)
    out = model(images(1, 64, 128))
    assert out.shape == (1, 3, 64, 128) and out.min() >= -1 and out.max() <= 1
    # the global trunk runs on the half-resolution input and meets the local branch at a quarter
    seen = {}
    model.global_generator.body.register_forward_hook(lambda m, i, o: seen.update(inp=i[0].shape, out=o.shape))
    model(images(1, 64, 128))
    assert seen["inp"][-2:] == (32, 64) and seen["out"] == (1, 8, 32, 64)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(images(1, 36, 128))  # fine for the global generator alone, not for the enhancer


def test_local_enhancer_starts_from_a_global_generator_checkpoint(generator):
    model = define_generator(TINY_LOCAL)
    model.load_global_state(generator.state_dict(), TINY.to_dict())
    x = images(1, 32, 64, channels=6)
    torch.testing.assert_close(model.global_generator.body(x), generator.body(x))
    with pytest.raises(ValueError, match="ngf"):
        model.load_global_state(define_generator(GeneratorConfig(ngf=16, n_downsample=2, n_blocks=1)).state_dict(),
                                GeneratorConfig(ngf=16, n_downsample=2, n_blocks=1))


def test_nearest_upsampling_variant_builds_and_runs():
    model = define_generator(GeneratorConfig(ngf=8, n_downsample=2, n_blocks=1, upsample="nearest"))
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
    assert model(images(1, 32, 64)).shape == (1, 3, 32, 64)


# --- discriminators ---------------------------------------------------------------------------

def test_multiscale_discriminator_returns_every_layer_of_every_scale():
    disc = define_discriminator(in_channels=6, ndf=8, n_layers=3, num_d=3)
    features = disc(pair_input(images(2, 64, 32), images(2, 64, 32, seed=1)))
    assert len(features) == 3
    for scale in features:
        assert [f.shape[1] for f in scale] == [8, 16, 32, 64, 1]  # n_layers + 1 features, then the patch scores
        assert all(f.shape[0] == 2 for f in scale)
    fine, mid, coarse = (scale[-1].shape[-2:] for scale in features)
    assert fine[0] > mid[0] > coarse[0] and fine[1] > mid[1] > coarse[1]
    with pytest.raises(ValueError, match="6 input channels"):
        disc(images(1, 64, 32))


def test_spectral_norm_option_parametrizes_every_convolution():
    disc = define_discriminator(in_channels=6, ndf=8, n_layers=2, num_d=2, spectral_norm=True)
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(c, "parametrizations") for c in convs)
    assert disc(images(1, 32, 32, channels=6))[0][-1].shape[1] == 1


def test_temporal_input_order_and_temporal_discriminator():
    label_prev, label_cur = images(1, 32, 32, seed=1), images(1, 32, 32, seed=2)
    frame_prev, frame_cur = images(1, 32, 32, seed=3), images(1, 32, 32, seed=4)
    x = temporal_input(label_prev, label_cur, frame_prev, frame_cur)
    assert x.shape[1] == 12
    for index, part in enumerate((label_prev, label_cur, frame_prev, frame_cur)):
        assert torch.equal(x[:, 3 * index:3 * index + 3], part)
    disc = define_temporal_discriminator(ndf=8, n_layers=2, num_d=2)
    assert disc.config.in_channels == 12 and len(disc(x)) == 2


# --- face GAN ---------------------------------------------------------------------------------

def test_untrained_face_refiner_returns_the_crop_and_always_stays_in_range():
    refiner = define_face_generator(FaceGeneratorConfig(ngf=8, n_downsample=2, n_blocks=1))
    label, crop_ = images(2, 32, 32), images(2, 32, 32, seed=1)
    torch.testing.assert_close(refiner(label, crop_), crop_)
    nn.init.constant_(refiner.net.head[1].bias, 5.0)  # a residual near +1 everywhere
    refined = refiner(label, torch.full_like(crop_, 0.9))
    assert refined.max() <= 1.0 and refined.min() >= 0.9


def test_face_discriminator_judges_label_and_image_crops():
    disc = define_face_discriminator(ndf=8, n_layers=2)
    features = disc(images(2, 32, 32), images(2, 32, 32, seed=1))
    assert len(features) == 1 and features[0][-1].shape[:2] == (2, 1)


def pose_with_face_at(x: float, y: float, spread: float = 10.0) -> np.ndarray:
    keypoints = np.full((33, 4), np.nan, dtype=np.float32)
    angles = np.linspace(0, 2 * np.pi, 11, endpoint=False)
    keypoints[:11, 0] = x + spread * np.cos(angles)
    keypoints[:11, 1] = y + spread * np.sin(angles)
    keypoints[:11, 3] = 0.9
    keypoints[11:, :] = [x, y + 100, 0, 0.9]  # body points far away must not move the box
    return keypoints


def test_face_box_is_centred_on_face_points_with_paper_size():
    keypoints = pose_with_face_at(250.0, 100.0)
    box = face_box(keypoints, (512, 256))
    assert box.side == 128  # EDN: 128 px faces at 512x256
    face = keypoints[:11, :2]
    centre = (face.min(0) + face.max(0)) / 2
    assert abs(box.x0 + box.side / 2 - centre[0]) <= 1 and abs(box.y0 + box.side / 2 - centre[1]) <= 1


def test_face_box_side_scales_with_height_and_never_drops_below_32():
    assert face_box(pose_with_face_at(500, 250), (1024, 512)).side == 256
    assert face_box(pose_with_face_at(60, 30), (128, 64)).side == 32
    assert face_box(pose_with_face_at(30, 20), (64, 40)).side == 32  # 20 px would be too few to refine


def test_face_box_is_clipped_inside_the_frame_without_shrinking():
    for x, y in [(2, 2), (510, 3), (5, 250), (511, 255), (-40, 300)]:
        box = face_box(pose_with_face_at(x, y), (512, 256))
        assert box.side == 128
        assert 0 <= box.x0 and box.x1 <= 512 and 0 <= box.y0 and box.y1 <= 256
    assert face_box(pose_with_face_at(30, 30), (48, 300)).side == 48  # never wider than the frame


def test_face_box_is_none_without_face_points_and_rejects_tiny_frames():
    assert face_box(np.full((33, 4), np.nan), (512, 256)) is None
    assert face_box(torch.from_numpy(pose_with_face_at(100, 100)), (512, 256)) is not None
    with pytest.raises(ValueError, match="too small"):
        face_box(pose_with_face_at(10, 10), (64, 20))


def test_paste_changes_only_pixels_inside_the_box():
    frame, patch = images(2, 64, 96), images(2, 32, 32, seed=5)
    box = FaceBox(40, 16, 32)
    out = paste(frame, patch, box)
    inside = torch.zeros(64, 96, dtype=torch.bool)
    inside[16:48, 40:72] = True
    assert torch.equal(out[..., ~inside], frame[..., ~inside])
    assert torch.equal(crop(out, box), patch)
    # one box per sample
    boxes = [FaceBox(0, 0, 32), FaceBox(64, 32, 32)]
    out = paste(frame, patch, boxes)
    assert torch.equal(crop(out, boxes), patch)
    assert torch.equal(out[0, :, 32:, :], frame[0, :, 32:, :]) and torch.equal(out[1, :, :32, :], frame[1, :, :32, :])
    with pytest.raises(ValueError, match="outside"):
        crop(frame, FaceBox(80, 0, 32))


def test_gradients_flow_through_crop_and_paste():
    refiner = define_face_generator(FaceGeneratorConfig(ngf=8, n_downsample=2, n_blocks=1))
    nn.init.normal_(refiner.net.head[1].weight, std=0.01)
    frame = images(1, 64, 64).requires_grad_(True)
    label = images(1, 64, 64, seed=1)
    box = FaceBox(16, 8, 32)
    refined = paste(frame, refiner(crop(label, box), crop(frame, box)), box)
    refined.square().sum().backward()
    assert frame.grad[..., 8:40, 16:48].abs().sum() > 0  # through the refined crop
    assert frame.grad[..., 50:, :].abs().sum() > 0  # through the untouched pixels
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in refiner.net.head.parameters())


# --- configs, checkpoints, FLOPs --------------------------------------------------------------

def test_configs_round_trip_through_json_dicts():
    for config in (TINY_LOCAL, FaceGeneratorConfig(ngf=16), DiscriminatorConfig(in_channels=12, num_d=3, spectral_norm=True)):
        assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="no field"):
        GeneratorConfig.from_dict({**TINY.to_dict(), "dropout": 0.5})
    with pytest.raises(ValueError, match="norm must be one of"):
        GeneratorConfig(norm="group")
    with pytest.raises(ValueError, match="ngf must be a positive integer"):
        GeneratorConfig(ngf=0)


def test_checkpoint_loads_only_into_the_network_of_its_config(generator):
    state, config = generator.state_dict(), TINY.to_dict()
    model = define_generator(TINY)
    load_generator_state(model, state, config)
    x = images(1, 32, 32)
    torch.testing.assert_close(model.eval()(x), generator(x))

    wider = define_generator(GeneratorConfig(ngf=16, n_downsample=2, n_blocks=2))
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(ValueError) as info:
        load_generator_state(wider, state, config)
    message = str(info.value)
    assert "ngf: model has 16, checkpoint has 8" in message and "n_blocks: model has 2, checkpoint has 1" in message
    assert "n_downsample" not in message
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items()), "a failed load must not touch the model"

    damaged = {k: v for k, v in state.items() if not k.startswith("head.")}
    with pytest.raises(ValueError, match="missing: head"):
        load_generator_state(define_generator(TINY), damaged, config)


def test_gflops_count_convolutions_and_transposed_convolutions():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))
    assert math.isclose(generator_gflops(conv, (1, 3, 16, 16)), 2 * 16 * 16 * 8 * 3 * 9 / 1e9)
    up = nn.Sequential(nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1))
    assert math.isclose(generator_gflops(up, (2, 8, 8, 8)), 2 * 2 * 8 * 8 * 8 * 4 * 9 / 1e9)
    model = define_generator(TINY)
    small, large = generator_gflops(model, (1, 3, 32, 64)), generator_gflops(model, (1, 3, 64, 128))
    assert math.isclose(large, 4 * small, rel_tol=1e-9) and small > 0
    assert model.training, "counting must not leave the model in eval mode"
