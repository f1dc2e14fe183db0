"""Distributed training: two gloo processes on the CPU (as torchrun would start them) train the
tiny preset and end with identical weights; the pair sampler gives each rank its own pairs."""
from __future__ import annotations

import os
import socket

import numpy as np
import torch
import torch.multiprocessing as mp
from conftest import shared_clip
from edn_server.gan.dataset import PairSampler
from edn_server.gan.model_io import load_trained_model

CLIP = "edn_subject4_train.mp4"
FRAMES = 24
STEPS = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, clip: str, out_dir: str) -> None:
    """One torchrun-style process: the rank layout comes from the environment, as torchrun sets it."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from edn_server.gan.train import train

    model = train(clip, "ddp", preset="tiny", steps=STEPS, end=FRAMES, device="cpu")
    weights = {f"generator.{k}": v for k, v in model.generator.state_dict().items()}
    weights.update({f"face.{k}": v for k, v in model.face_generator.state_dict().items()})
    torch.save(weights, os.path.join(out_dir, f"rank{rank}.pt"))


def test_two_gloo_ranks_keep_identical_weights(pose_model_full, tmp_path):
    clip = shared_clip(CLIP)
    mp.spawn(_rank_main, args=(2, _free_port(), str(clip), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    different = [k for k in rank0 if not torch.equal(rank0[k], rank1[k])]
    assert not different, f"ranks disagree on {different[:5]}"
    saved = load_trained_model("ddp")  # written once, by rank 0
    assert saved.info["training"]["world_size"] == 2 and saved.info["steps"] == STEPS
    assert all(torch.equal(v, rank0[f"generator.{k}"]) for k, v in saved.generator.state_dict().items())


def test_pair_sampler_shards_each_global_batch_among_ranks():
    pairs = np.arange(100, 140)
    single = PairSampler(pairs, batch_size=4, seed=3)
    ranks = [PairSampler(pairs, batch_size=2, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for _ in range(25):  # several epochs
        whole = single.next_batch()
        parts = [s.next_batch() for s in ranks]
        assert np.array_equal(np.concatenate(parts), whole) and not set(parts[0]) & set(parts[1])
    assert ranks[0].state_dict() == ranks[1].state_dict()  # one sampler state for the checkpoint
