"""One error type with a stable code, shared by the CLI, the server and the add-on's messages."""
from __future__ import annotations


class EdnError(Exception):
    """A problem the user can act on: `code` is stable (API clients switch on it), `message` says
    what went wrong and what to do about it, naming the file or parameter involved."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


# Stable codes. Keep in sync with the README's troubleshooting table.
MEDIA_NOT_FOUND = "MEDIA_NOT_FOUND"
MEDIA_UNREADABLE = "MEDIA_UNREADABLE"
NO_FRAMES = "NO_FRAMES"
BAD_RANGE = "BAD_RANGE"
NO_PERSON = "NO_PERSON"
NO_ANKLES = "NO_ANKLES"
POSE_MODEL_MISSING = "POSE_MODEL_MISSING"
POSE_MODEL_INVALID = "POSE_MODEL_INVALID"
BAD_PARAMS = "BAD_PARAMS"
BAD_POSE_FILE = "BAD_POSE_FILE"
RENDERER_MISSING = "RENDERER_MISSING"
RENDER_FAILED = "RENDER_FAILED"
CANCELLED = "CANCELLED"
WEIGHTS_MISSING = "WEIGHTS_MISSING"  # network weights neither on disk nor downloadable
WEIGHTS_INVALID = "WEIGHTS_INVALID"  # weights file fails its checksum or does not fit the network
BAD_MODEL = "BAD_MODEL"  # a trained model's files are unreadable or do not fit each other
BAD_CHECKPOINT = "BAD_CHECKPOINT"  # a training checkpoint is unreadable or from other settings
MODEL_EXISTS = "MODEL_EXISTS"  # training a new model under a name already taken
UNDER_TRAINED = "UNDER_TRAINED"  # a warning, never an error: the model trained fewer steps than its preset's useful floor
OUTPUT_UNWRITABLE = "OUTPUT_UNWRITABLE"  # a result file could not be written (permissions, full disk, a folder in the way)

# Job server codes.
MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
OUT_OF_MEMORY = "OUT_OF_MEMORY"
INTERRUPTED = "INTERRUPTED"
UNAUTHORIZED = "UNAUTHORIZED"
NOT_FOUND = "NOT_FOUND"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
NOT_READY = "NOT_READY"
TOO_LARGE = "TOO_LARGE"
HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED"
SERVER_RUNNING = "SERVER_RUNNING"
PATH_NOT_ALLOWED = "PATH_NOT_ALLOWED"  # a media path or output folder outside the server's --root folders
INTERNAL = "INTERNAL"
