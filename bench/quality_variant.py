"""Train one tuning variant of the quality figure (bench/quality.py): subject 4, frames [0, 720),
the preview preset with TrainConfig overrides given as JSON, a time budget in minutes.

    OMP_NUM_THREADS=1 PYTHONPATH=server .venv/bin/python bench/quality_variant.py NAME MINUTES '{"lr": 0.0004}'
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "edn_subject4_train.mp4"


def main() -> None:
    from edn_server.gan.train import train
    from edn_server.progress import TqdmProgress

    name, minutes = sys.argv[1], float(sys.argv[2])
    overrides = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    bar = TqdmProgress()
    try:
        model = train(CLIP, name, preset="preview", minutes=minutes, end=720, progress=bar, config_overrides=overrides)
    finally:
        bar.close()
    print(f"trained {model.name}: {model.info.get('steps')} steps, mode {model.mode}")


if __name__ == "__main__":
    main()
