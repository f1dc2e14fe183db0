"""The training step's cost: seconds per optimisation step of each stage (bench/gan.py's training
figures), and a comparison of ways to make the body step cheaper on this machine.

    .venv/bin/python bench/gan_training.py [--preset preview] [--threads 1] [--steps 8] [--label before]
        [--variants eager,channels_last,foreach_adam,fused_adam,compile_generator,compile_all]

Every variant builds the same networks from the same seed and steps on the same random batch, so
its first step's losses must equal the eager one's (up to float rounding: `loss_max_rel_difference`);
s/step is the best and the median of the timed steps, which alternate between the variants, after
each one's warm-up step (a compile happens there and is reported apart), in wall-clock seconds and
in CPU seconds of this process: with one torch thread on a machine shared with other jobs, CPU
time is the steadier figure (waiting for a core is not counted in it). Results are merged into bench/results/gan_train_step.json under
`--label` with the command that produced them; nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TARGET_SIZE = (1024, 512)  # a 2:1 target, as the EDN subject clips
VARIANTS = ("eager", "channels_last", "foreach_adam", "fused_adam", "compile_generator", "compile_all")


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def best_seconds(fns: dict, repeats: int, device, inner: int = 1) -> dict:
    """Best time of each callable over `repeats` alternating rounds (after one warm-up call each)."""
    for fn in fns.values():
        fn()
    _sync(device)
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            for _ in range(inner):
                fn()
            _sync(device)
            best[name] = min(best[name], (time.perf_counter() - started) / inner)
    return best


def training(preset: str, device, steps: int) -> dict:
    """Seconds per optimisation step of each stage, with train.py's step functions."""
    import torch
    from edn_server.gan.discriminators import FaceDiscriminator, discriminator_from_config
    from edn_server.gan.face import FaceBox
    from edn_server.gan.losses import VGGLoss
    from edn_server.gan.networks import define_face_generator, define_generator
    from edn_server.gan.steps import Batch, BodyStep, FaceStep, PairGenerator
    from edn_server.gan.train_config import preset_config
    from edn_server.gan.vgg import load_vgg19

    config = preset_config(preset, TARGET_SIZE)
    vgg_net = load_vgg19(device=device, allow_download=False) if config.use_vgg else None
    vgg = VGGLoss(vgg_net) if vgg_net is not None else None
    amp = config.amp if device.type == "cuda" else "off"
    n = config.batch_size

    def batch(width: int, height: int, boxes=None) -> Batch:
        tensors = [torch.rand(n, 3, height, width, device=device) * 2 - 1 for _ in range(4)]
        if device.type == "cuda":
            tensors = [t.contiguous(memory_format=torch.channels_last) for t in tensors]
        return Batch(*tensors, boxes=boxes)

    def adam(params):
        return torch.optim.Adam(params, lr=config.lr, betas=(config.beta1, config.beta2))

    def placed(module):
        module = module.to(device)
        return module.to(memory_format=torch.channels_last) if device.type == "cuda" else module

    def time_steps(step, data) -> float:
        step(data)  # warm-up (allocations, kernel selection)
        _sync(device)
        started = time.perf_counter()
        for _ in range(steps - 1):
            step(data)
        _sync(device)
        return (time.perf_counter() - started) / (steps - 1)

    stages = {"body": (config.global_generator, (config.width, config.height))}
    if config.generator.local_enhancer and (device.type == "cuda" or preset != "paper"):
        stages["local"] = (config.generator, config.output_size)
    out: dict = {"steps_timed": steps - 1, "batch_size": n, "vgg_loss": vgg is not None, "amp": amp}
    for name, (gen_config, (width, height)) in stages.items():
        generator = placed(define_generator(gen_config))
        discriminator = placed(discriminator_from_config(config.discriminator))
        temporal = placed(discriminator_from_config(config.temporal_discriminator))
        step = BodyStep(PairGenerator(generator), discriminator, temporal, adam(generator.parameters()),
                        adam([*discriminator.parameters(), *temporal.parameters()]), config.loss_weights, vgg, amp)
        out[f"{name}_s_per_step"] = time_steps(step, batch(width, height))
        out[f"{name}_size"] = [width, height]
        del generator, discriminator, temporal, step
    if config.face_stage and (device.type == "cuda" or preset != "paper"):
        width, height = config.output_size
        side = config.face_side
        body = placed(define_generator(config.generator)).eval().requires_grad_(False)
        face, judge = placed(define_face_generator(config.face_generator)), placed(FaceDiscriminator(config.face_discriminator))
        step = FaceStep(body, face, judge, adam(face.parameters()), adam(judge.parameters()), config.face_loss_weights, vgg, amp)
        box = FaceBox((width - side) // 2, (height - side) // 4, side)
        out["face_s_per_step"] = time_steps(step, batch(width, height, boxes=[box] * n))
    return out


def body_step_variant(preset: str, variant: str):
    """The body stage's step (stage 1 of `preset`, CPU) built the `variant` way, with its batch."""
    import torch
    from edn_server.gan.discriminators import discriminator_from_config
    from edn_server.gan.losses import VGGLoss
    from edn_server.gan.networks import define_generator
    from edn_server.gan.steps import Batch, BodyStep, PairGenerator
    from edn_server.gan.train_config import preset_config
    from edn_server.gan.vgg import load_vgg19

    config = preset_config(preset, TARGET_SIZE)
    vgg_net = load_vgg19(allow_download=False) if config.use_vgg else None
    vgg = VGGLoss(vgg_net) if vgg_net is not None else None
    layout = torch.channels_last if variant == "channels_last" else torch.contiguous_format
    torch.manual_seed(0)
    generator = define_generator(config.global_generator).to(memory_format=layout)
    discriminator = discriminator_from_config(config.discriminator).to(memory_format=layout)
    temporal = discriminator_from_config(config.temporal_discriminator).to(memory_format=layout)
    n, width, height = config.batch_size, config.width, config.height
    tensors = [(torch.rand(n, 3, height, width) * 2 - 1).contiguous(memory_format=layout) for _ in range(4)]
    options = {"foreach_adam": {"foreach": True}, "fused_adam": {"fused": True}}.get(variant, {})

    def adam(params):
        return torch.optim.Adam(params, lr=config.lr, betas=(config.beta1, config.beta2), **options)

    if variant in ("compile_generator", "compile_all"):
        generator = torch.compile(generator)
    if variant == "compile_all":
        discriminator, temporal = torch.compile(discriminator), torch.compile(temporal)
    step = BodyStep(PairGenerator(generator), discriminator, temporal, adam(generator.parameters()),
                    adam([*discriminator.parameters(), *temporal.parameters()]), config.loss_weights, vgg, "off")
    return step, Batch(*tensors), {"size": [width, height], "vgg_loss": vgg is not None}


def measure_variants(preset: str, variants: list[str], steps: int) -> list[dict]:
    """Each variant's warm-up step (its first losses; any compile happens here), then `steps` rounds
    that time one step of every variant in turn: a busy machine slows all of them alike."""
    built, rows = {}, {}
    for variant in variants:
        step, batch, info = body_step_variant(preset, variant)
        started = time.perf_counter()
        losses = step(batch)
        rows[variant] = {"variant": variant, **info, "warm_up_s": time.perf_counter() - started, "first_losses": losses}
        built[variant] = (step, batch)
    times: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(steps):
        for variant, (step, batch) in built.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            step(batch)
            times[variant].append(time.perf_counter() - started)
            cpu[variant].append(time.process_time() - started_cpu)
    for variant, row in rows.items():
        row.update(best_s_per_step=min(times[variant]), median_s_per_step=statistics.median(times[variant]),
                   best_cpu_s_per_step=min(cpu[variant]), median_cpu_s_per_step=statistics.median(cpu[variant]),
                   steps_timed=steps)
    return list(rows.values())


def _loss_difference(losses: dict, reference: dict) -> float:
    return max(abs(losses[k] - reference[k]) / max(abs(reference[k]), 1e-12) for k in reference)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="preview")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant, after its warm-up step")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--label", default="latest", help="the key the results are stored under (e.g. before, after)")
    parser.add_argument("--out", type=Path, default=RESULTS / "gan_train_step.json")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    rows = measure_variants(args.preset, variants, args.steps)
    for row in rows:
        print(f"{row['variant']:18s} best {row['best_s_per_step']:.3f} s/step, median {row['median_s_per_step']:.3f}; "
              f"CPU s/step best {row['best_cpu_s_per_step']:.3f}, median {row['median_cpu_s_per_step']:.3f} "
              f"(warm-up {row['warm_up_s']:.1f} s)", flush=True)
    reference = next((r for r in rows if r["variant"] == "eager"), None)
    for row in rows:
        if reference is not None:
            row["loss_max_rel_difference"] = _loss_difference(row["first_losses"], reference["first_losses"])
            row["speedup_vs_eager"] = reference["best_s_per_step"] / row["best_s_per_step"]
            row["cpu_speedup_vs_eager"] = reference["median_cpu_s_per_step"] / row["median_cpu_s_per_step"]
    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report[args.label] = {
        "command": "PYTHONPATH=server .venv/bin/python bench/gan_training.py " + shlex.join(argv or sys.argv[1:]),
        "machine": {"torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "preset": args.preset, "threads": args.threads, "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out} [{args.label}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
