"""The vocabulary both sides of the torch boundary share: stage names, file names and the frame
pattern. It imports nothing of edn's on purpose, so the HTTP service can name what gan/ writes and
reports without importing gan/ (which pulls in torch)."""
from __future__ import annotations

import re

# -- what a trained model generates (model.json's `mode`) ------------------------------------------
PERSON = "person"  # the person with alpha in a window, composited over the target's background plate
FULL_FRAME = "full-frame"  # the whole frame, as EDN (and every model trained before the person layer)

# -- progress stages (shown to users as the job's `stage`; the scheduler weights them per kind) --
DETECT_STAGE = "detect poses"
NORMALIZE_STAGE = "smooth and normalize"
RENDER_STAGE = "render labels"
DATASET_STAGE = "dataset"
TRAIN_STAGE = "train"  # reported per training stage as "train: body", "train: local", "train: face"
GENERATE_STAGE = "generate frames"
COMPILE_STAGE = "compile the generator"
EVALUATE_STAGE = "evaluate"
MEDIAN_STAGE = "median baseline"
TRAINING_FRAMES_STAGE = "read training frames"  # the baselines' frames, decoded from the target clip
DOWNLOAD_STAGE = "download pose model"
BUILD_STAGE = "build pose model"
# Once-per-machine preparations that may run inside any job: they carry no weight of their own.
SETUP_STAGES = (DOWNLOAD_STAGE, BUILD_STAGE)


def sub_stage(stage: str, part: str) -> str:
    """The label of one part of a stage ("train: body"); it counts as that stage's progress."""
    return f"{stage}: {part}"


def stage_family(stage: str) -> str:
    """The stage a label belongs to: "train: body" -> "train"; a plain stage name is its own."""
    return stage.partition(":")[0].strip()


# What a stage's (done, total) counts, for progress bars; a stage not listed counts frames.
FRAMES, STEPS, SECONDS, BYTES = "frame", "step", "s", "B"
STAGE_UNITS = {DOWNLOAD_STAGE: BYTES, BUILD_STAGE: STEPS, COMPILE_STAGE: STEPS, NORMALIZE_STAGE: STEPS, TRAIN_STAGE: STEPS}


def stage_unit(stage: str) -> str:
    return STAGE_UNITS.get(stage_family(stage), FRAMES)


# -- files ---------------------------------------------------------------------------------------
RESULT_MANIFEST = "edn_result.json"  # a transfer's output folder: written last, lists the results
RESULT_PENDING = ".edn_result.pending.json"
RESULT_VIDEO = "result.mp4"
RESULT_POSES = "edn_poses.npz"  # the normalized poses the frames were generated from
POSES_FILE = "poses.npz"  # extract_poses' output
NORMALIZED_POSES_FILE = "normalized_poses.npz"  # preview_poses' output
LABELS_DIR = "labels"
LABELS_VIDEO = "labels.mp4"
METRICS_FILE = "metrics.json"  # `edn eval`'s output, also looked for in a model folder
SAMPLES_FILE = "samples.png"  # a model folder's training samples
HELDOUT_SAMPLE_FILE = "heldout_sample.png"  # real | label | generated on frames never trained on, refreshed while training
FACE_CHECK_FILE = "face_check.png"  # held-out faces: real | body stage alone | face refined (gan/face_check.py)
LOSSES_FILE = "losses.png"
LOSSES_JSON = "losses.json"
PLATE_FILE = "plate.png"  # a person-mode model's background plate, at the target's native resolution

# -- numbered frames -----------------------------------------------------------------------------
FRAME_PATTERN = "{:06d}.png"  # numbered by the source clip's frame index, at least six digits
FRAME_NAME = re.compile(r"^\d{6,}\.png$")


def frame_name(index: int) -> str:
    return FRAME_PATTERN.format(index)
