"""MediaPipe BlazePose's 33 landmarks: names, left/right pairs and the groups the pipeline uses."""
from __future__ import annotations

import numpy as np

NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
NUM_LANDMARKS = len(NAMES)
INDEX = {name: i for i, name in enumerate(NAMES)}

NOSE = INDEX["nose"]
LEFT_ANKLE, RIGHT_ANKLE = INDEX["left_ankle"], INDEX["right_ankle"]
LEFT_HIP, RIGHT_HIP = INDEX["left_hip"], INDEX["right_hip"]
LEFT_SHOULDER, RIGHT_SHOULDER = INDEX["left_shoulder"], INDEX["right_shoulder"]
ANKLES = (LEFT_ANKLE, RIGHT_ANKLE)
HIPS = (LEFT_HIP, RIGHT_HIP)
FACE = tuple(range(0, 11))


def _mirror_permutation() -> np.ndarray:
    perm = np.arange(NUM_LANDMARKS)
    for i, name in enumerate(NAMES):
        for a, b in (("left_", "right_"), ("right_", "left_")):
            if a in name:
                perm[i] = INDEX[name.replace(a, b)]
    return perm


# keypoints[:, MIRROR] swaps every left landmark with its right twin (used when mirroring a pose).
MIRROR = _mirror_permutation()
