"""The quality figure: subject 4 trained on frames [0, 720) with one torch thread for N CPU-minutes,
scored on the unseen frames [720, 800) at 512x256, the pipeline before the person layer ("old",
commit fb58fff) and the person layer ("new") side by side, with the median-frame and the
nearest-training-frame references (from the training clip; see gan/eval_baselines.py).

Train the models first (two at a time, one thread each, as the figure's commands say), then:

    PYTHONPATH=server .venv/bin/python bench/quality.py --work DIR [--only NAME ...]

evaluates every model of RUNS that exists in the data dir (an eval JSON already in DIR is reused),
and writes bench/results/quality.json and quality.png. Frames of subject 4 are research-only
footage: the side-by-side of real and generated frames it also writes stays in DIR, uncommitted.
"""
from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CLIP = ROOT.parent / "shared" / "data" / "edn_subject4_train.mp4"
TRAIN_END, EVAL_RANGE, SIZE = 720, (720, 800), (512, 256)
OLD_COMMIT = "fb58fff"
TRAIN = "OMP_NUM_THREADS=1 .venv/bin/edn train ../shared/data/edn_subject4_train.mp4 --preset preview --end 720"
VARIANT = "OMP_NUM_THREADS=1 PYTHONPATH=server .venv/bin/python bench/quality_variant.py"
METRICS = ("body_ssim", "person_ssim", "face_ssim", "body_psnr", "pose_distance")


def variant_command(name: str, init: str, lr: float, l1: float) -> str:
    overrides = {"weight_init": init, "lr": lr, "loss_weights": {"l1": l1}}
    return f"{VARIANT} {name} 10 '{json.dumps(overrides)}'"


@dataclass(frozen=True)
class Run:
    model: str
    pipeline: str  # "old" (before the person layer), "new" (the preset as shipped), "tuning" (a variant)
    minutes: float
    command: str
    note: str = ""


RUNS = (
    Run("s4-old-10", "old", 10, f"git worktree add ../old {OLD_COMMIT}; cd ../old; {TRAIN} --name s4-old-10 --minutes 10"),
    Run("s4-old-30", "old", 30, f"(in ../old) {TRAIN} --name s4-old-30 --minutes 30"),
    Run("s4-final-10", "new", 10, f"{TRAIN} --name s4-final-10 --minutes 10"),
    Run("s4-new-30", "new", 30, f"{TRAIN} --name s4-new-30 --minutes 30"),
    Run("s4-new-60", "new", 60, f"{TRAIN} --name s4-new-60 --minutes 60"),
    *(Run(name, "tuning", 10, variant_command(name, init, lr, l1), note) for name, init, lr, l1, note in (
        ("s4-new-10", "default", 2e-4, 10, "person layer, PyTorch init, L1 10, lr 2e-4 (the preset before tuning)"),
        ("s4-init-10", "normal", 2e-4, 10, "+ pix2pixHD init"),
        ("s4-l1x3-10", "normal", 2e-4, 30, "+ pix2pixHD init, L1 30"),
        ("s4-lr2x-10", "normal", 4e-4, 10, "+ pix2pixHD init, lr 4e-4"),
    )),
)


def evaluate_run(run: Run, work: Path, baselines: bool) -> dict | None:
    from edn_server import config, registry
    from edn_server.gan.evaluate import evaluate

    out = work / f"{run.model}.eval.json"
    if out.is_file():
        return json.loads(out.read_text())
    if not (registry.models_dir(config.data_dir()) / run.model / registry.MODEL_FILE).is_file():
        print(f"skip {run.model}: not trained (run: {run.command})")
        return None
    print(f"evaluating {run.model}…", flush=True)
    return evaluate(run.model, CLIP, out, start=EVAL_RANGE[0], end=EVAL_RANGE[1], size=SIZE,
                    baseline="median,nearest" if baselines else None, per_frame=False)


def row(run: Run, result: dict) -> dict:
    from edn_server import config, registry

    info = registry.read_model_info(registry.models_dir(config.data_dir()) / run.model)
    return {**asdict(run), "steps": info.get("steps"), "mode": info.get("mode", "full-frame (before the person layer)"),
            "resolution": info.get("resolution"), **{name: result.get(name) for name in METRICS}}


def reference(result: dict, key: str) -> dict | None:
    found = result.get(key)
    if not isinstance(found, dict) or "unavailable_reason" in found:
        return None
    return {"source": found["source"], **{name: found.get(name) for name in METRICS}}


def plot(rows: list[dict], refs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, metric in zip(axes, ("body_ssim", "person_ssim", "face_ssim"), strict=True):
        for pipeline, style in (("old", "o--"), ("new", "s-")):
            points = sorted((r["minutes"], r[metric]) for r in rows if r["pipeline"] == pipeline and r[metric] is not None)
            if points:
                ax.plot(*zip(*points, strict=True), style, label=f"{pipeline} pipeline")
        tuning = [(r["minutes"], r[metric]) for r in rows if r["pipeline"] == "tuning" and r[metric] is not None]
        if tuning:
            ax.plot(*zip(*tuning, strict=True), "x", color="grey", label="10-min tuning variants")
        for name, colour in (("nearest", "tab:red"), ("median", "tab:green")):
            if refs.get(name) and refs[name].get(metric) is not None:
                ax.axhline(refs[name][metric], color=colour, lw=1, ls=":", label=f"{name} training frame")
        ax.set_title(f"{metric} at 512x256, frames 720-799 (unseen)")
        ax.set_xlabel("CPU-minutes (1 torch thread)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder for the eval JSONs (reused when present)")
    parser.add_argument("--only", nargs="*", help="evaluate only these models (the report still lists every evaluated one)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows, refs = [], {}
    for run in RUNS:
        if args.only and run.model not in args.only and not (args.work / f"{run.model}.eval.json").is_file():
            continue
        result = evaluate_run(run, args.work, baselines=not refs)
        if result is None:
            continue
        rows.append(row(run, result))
        if not refs and (near := reference(result, "nearest_baseline")):
            refs = {"nearest": near, "median": reference(result, "baseline"), "from_model": run.model}
    report = {
        "what": "subject 4 (preview preset, one torch thread) trained on frames [0, 720) for the minutes given, "
                "scored on the unseen frames [720, 800) at 512x256; old = the pipeline before the person layer "
                f"(commit {OLD_COMMIT}), new = the person layer as shipped; tuning = 10-minute variants of the new one",
        "eval_command": ".venv/bin/edn eval --model NAME --video ../shared/data/edn_subject4_train.mp4 --start 720 --end 800 "
                        "--size 512x256 --baseline median,nearest -o NAME.json",
        "rerun": "PYTHONPATH=server .venv/bin/python bench/quality.py --work DIR",
        "machine": f"{platform.machine()}, 2-core CPU shared with other work (two trainings at once), no GPU",
        "runs": rows,
        "references": refs,
        "images": "not committed (research-only footage): the model's held-out frames are in each model's "
                  "heldout_sample.png; `edn transfer ../shared/data/edn_subject4_train.mp4 --model NAME --no-normalize "
                  "--start 720 --end 800 -o DIR` writes them all",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quality.json").write_text(json.dumps(report, indent=1))
    plot(rows, refs, RESULTS / "quality.png")
    for r in rows:
        print(f"{r['model']:12s} {r['pipeline']:6s} {r['minutes']:4g} min {r['steps']!s:>6} steps  "
              + "  ".join(f"{m} {r[m]:.3f}" for m in METRICS if r[m] is not None))
    for name in ("nearest", "median"):
        if refs.get(name):
            print(f"{name:12s} reference      " + "  ".join(f"{m} {refs[name][m]:.3f}" for m in METRICS if refs[name][m] is not None))


if __name__ == "__main__":
    main()
