"""GPU check: what the paper preset does on a CUDA machine, in one command (bench/gpu_check.sh).

    .venv/bin/python bench/gpu_check.py [--train-minutes 3] [--out bench/results/gpu.json]

On CUDA: generator frames/s of the paper preset at 512x256 (the global generator) and 1024x512
(the local enhancer), each eager fp32, eager bf16 autocast, compiled fp32 and compiled bf16; the
training seconds per step of the body and local stages (bench/gan.py's measurement, bf16); and,
with --train-minutes N, an N-minute paper-preset `edn train` on subject 4's frames [0, 720) and
`edn eval` of it on [720, 800), with the held-out figures. Writes bench/results/gpu.json.

On a CPU (or with --smoke) it runs the same code on the tiny preset at tiny sizes, without
torch.compile or the training run, in seconds, and writes to a temporary file unless --out is given: `make test`
runs it (tests/server/test_gpu_check.py), so the script cannot rot unseen.
Numbers only; nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import gan as gan_bench  # noqa: E402  (bench/gan.py: timing helpers and the training-step measurement)

ROOT = BENCH.parent
SUBJECT = "edn_subject4_train.mp4"
TRAIN_RANGE, HELD_OUT = (0, 720), (720, 800)
GPU_SIZES = {"global": (512, 256), "local": (1024, 512)}
SMOKE_SIZES = {"global": (64, 32), "local": (128, 64)}


def generator_fps(preset: str, sizes: dict[str, tuple[int, int]], device, repeats: int, compile_too: bool) -> dict:
    """Frames/s of the preset's global generator and local enhancer, per precision and compile."""
    import dataclasses

    import torch
    from edn_server.gan.compiled import CompiledOrEager
    from edn_server.gan.networks import define_generator, generator_gflops
    from edn_server.gan.sequence_generator import memory_format
    from edn_server.gan.steps import autocast
    from edn_server.gan.train_config import preset_config

    generator = preset_config(preset, gan_bench.TARGET_SIZE).generator
    layout = memory_format(device)
    out = {}
    for name, (width, height) in sizes.items():
        config = dataclasses.replace(generator, local_enhancer=name == "local", n_blocks_local=generator.n_blocks_local)
        torch.manual_seed(0)
        net = define_generator(config).to(device).eval().to(memory_format=layout)
        label = (torch.rand(1, 3, height, width, device=device) * 2 - 1).contiguous(memory_format=layout)
        previous = (torch.rand(1, 3, height, width, device=device) * 2 - 1).contiguous(memory_format=layout)
        runners = {"eager_fp32": (net, "off")}
        if device.type == "cuda":  # edn autocasts to bf16 on CUDA only
            runners["eager_bf16"] = (net, "bf16")
        compile_s = {}
        if compile_too:
            compiled = CompiledOrEager(net)
            runners.update({"compiled_fp32": (compiled, "off"), "compiled_bf16": (compiled, "bf16")})
        has_bf16 = "eager_bf16" in runners

        def run(module, amp, label=label, previous=previous):
            with torch.inference_mode(), autocast(device, amp):
                return module(label, previous)

        fns = {key: (lambda m=module, a=amp: run(m, a)) for key, (module, amp) in runners.items()}
        for key in [k for k in fns if k.startswith("compiled")]:
            started = time.perf_counter()
            fns[key]()  # the one-off compile of this precision
            gan_bench._sync(device)
            compile_s[key] = time.perf_counter() - started
        seconds = gan_bench.best_seconds(fns, repeats, device)
        reference = run(net, "off").float()
        out[name] = {
            "size": [width, height], "gflop_per_frame": generator_gflops(net, (1, 3, height, width)),
            "fps": {key: 1.0 / s for key, s in seconds.items()},
            "ms": {key: 1000.0 * s for key, s in seconds.items()},
            "max_abs_difference_bf16": float((run(net, "bf16").float() - reference).abs().max()) if has_bf16 else None,
            "compile_s": compile_s,
            "compiled_fell_back": bool(compile_too and compiled.fell_back),
        }
        del net
    return out


def _cli(args: list[str], env: dict, log: Path) -> float:
    """Run `python -m edn_server.cli ARGS`; seconds taken. Output goes to `log`."""
    started = time.perf_counter()
    with open(log, "a") as handle:
        handle.write(f"$ edn {' '.join(args)}\n")
        handle.flush()
        done = subprocess.run([sys.executable, "-m", "edn_server.cli", *args], env=env, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"edn {args[0]} failed with exit status {done.returncode}; see {log}")
    return time.perf_counter() - started


def training_run(preset: str, minutes: float, device: str, work: Path) -> dict:
    """An N-minute training on subject 4 and its held-out figures, in a scratch EDN_HOME."""
    clip = gan_bench.SHARED_DATA / SUBJECT
    if not clip.is_file():
        return {"skipped": f"{SUBJECT} not found in {gan_bench.SHARED_DATA} (set EDN_SHARED_DATA)"}
    env = {**os.environ, "EDN_HOME": str(work / "home")}
    log = work / "training.log"
    train_args = ["train", str(clip), "--name", "gpu-check", "--preset", preset, "--minutes", str(minutes),
                  "--start", str(TRAIN_RANGE[0]), "--end", str(TRAIN_RANGE[1]), "--device", device]
    train_s = _cli(train_args, env, log)
    metrics = work / "metrics.json"
    eval_args = ["eval", "--model", "gpu-check", "--video", str(clip), "-o", str(metrics), "--baseline", "median",
                 "--start", str(HELD_OUT[0]), "--end", str(HELD_OUT[1]), "--device", device]
    eval_s = _cli(eval_args, env, log)
    return {"preset": preset, "minutes": minutes, "train_range": list(TRAIN_RANGE), "held_out": list(HELD_OUT),
            "train_wall_s": train_s, "eval_wall_s": eval_s, "metrics": json.loads(metrics.read_text()),
            "commands": [" ".join(["edn", *train_args]), " ".join(["edn", *eval_args])]}


def check(smoke: bool, train_minutes: float, work: Path) -> dict:
    import torch

    cuda = torch.cuda.is_available() and not smoke
    device = torch.device("cuda" if cuda else "cpu")
    preset = "paper" if cuda else "tiny"
    report: dict = {"smoke": not cuda, "preset": preset, "machine": gan_bench.machine_info(device.type)}
    started = time.perf_counter()
    report["generation"] = generator_fps(preset, GPU_SIZES if cuda else SMOKE_SIZES, device, repeats=10 if cuda else 2, compile_too=cuda)
    report["training"] = gan_bench.training(preset, device, steps=6 if cuda else 2)
    if cuda:
        report["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if train_minutes > 0 and cuda:
        try:
            report["training_run"] = training_run(preset, train_minutes, device.type, work)
        except RuntimeError as error:  # keep the speed figures; say what failed
            log = work / "training.log"
            report["training_run"] = {"error": str(error), "log_tail": log.read_text()[-4000:] if log.is_file() else ""}
    elif train_minutes > 0:
        report["training_run"] = {"skipped": "the smoke version never trains (no CUDA, or --smoke)"}
    report["wall_s"] = time.perf_counter() - started
    return report


def summary(report: dict) -> str:
    lines = [f"{report['preset']} preset on {report['machine'].get('gpu', 'CPU')}{' (smoke)' if report['smoke'] else ''}:"]
    for name, row in report["generation"].items():
        rates = ", ".join(f"{key} {fps:.1f}" for key, fps in row["fps"].items())
        lines.append(f"  {name} {row['size'][0]}x{row['size'][1]}: frames/s {rates}")
    lines.append("  training s/step: " + ", ".join(f"{k.removesuffix('_s_per_step')} {v:.3g}"
                                                   for k, v in report["training"].items() if k.endswith("_s_per_step")))
    run = report.get("training_run")
    if run and "metrics" in run:
        lines.append(f"  {run['minutes']}-minute run: {json.dumps(run['metrics'])[:300]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the tiny CPU version even where CUDA is available")
    parser.add_argument("--train-minutes", type=float, default=0.0,
                        help="also train on subject 4 for this many minutes and evaluate on held-out frames (0: off)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the JSON to write (default: bench/results/gpu.json on CUDA, a temporary file otherwise)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edn-gpu-check-") as work:
        report = check(args.smoke, args.train_minutes, Path(work))
    out = args.out or (BENCH / "results" / "gpu.json" if not report["smoke"] else Path(tempfile.gettempdir()) / "edn_gpu_check_smoke.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
