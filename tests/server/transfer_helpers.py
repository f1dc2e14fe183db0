"""Tiny trained targets for the transfer and evaluation tests: untrained generators saved through
model_io with the pose statistics of a real target clip, so loading, normalization and label
drawing are all the real thing (only the weights are random)."""
from __future__ import annotations

import functools
from pathlib import Path

import torch
from conftest import shared_clip
from edn_server.config import data_dir
from edn_server.gan.model_io import save_trained_model
from edn_server.gan.networks import define_face_generator, define_generator
from edn_server.gan.train_config import preset_config
from edn_server.pose.detect import extract_poses
from edn_server.pose.normalize import PoseStats
from edn_server.registry import models_dir
from torch import nn

TARGET_CLIP = "edn_subject4_train.mp4"
SOURCE_CLIP = "mediapipe_pose_segmentation_dance.mp4"


@functools.cache
def target_stats() -> PoseStats:
    poses = extract_poses(shared_clip(TARGET_CLIP), end=12)
    return PoseStats.from_poses(poses, name=TARGET_CLIP)


def save_tiny_model(name: str, seed: int = 0, live_face: bool = False, height: int = 64, info: dict | None = None) -> Path:
    """A 'tiny' preset model (128x64 for the 2:1 target) in the registry. An untrained face
    generator returns its input (its last layer starts at zero); `live_face` randomizes that
    layer so face refinement visibly changes pixels."""
    config = preset_config("tiny", (1024, 512), height=height)
    torch.manual_seed(seed)
    generator = define_generator(config.generator)
    face = define_face_generator(config.face_generator)
    if live_face:
        head = face.net.head[1]
        nn.init.normal_(head.weight, std=0.05)
        nn.init.normal_(head.bias, std=0.2)
    return save_trained_model(models_dir(data_dir()) / name, config, target_stats(), generator, face, {"steps": 0, **(info or {})})
