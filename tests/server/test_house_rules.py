"""House rules that hold by test: MediaPipe is imported only in pose/, torch only in gan/ (imports
inside functions count), and the names both sides of the torch boundary share come from names.py."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "edn_server"
# a library -> the one sub-package that may import it
OWNERS = {"mediapipe": "pose", "torch": "gan", "torchvision": "gan"}


def imported_roots(source: str) -> set[str]:
    """Top-level names of every absolute import anywhere in the module, function bodies included."""
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_scan_sees_imports_inside_functions():
    source = "def probe():\n    import torch.cuda\n    from mediapipe.tasks import python\n"
    assert imported_roots(source) == {"torch", "mediapipe"}


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_a_heavy_library_is_imported_only_by_its_owner(library):
    owner = PACKAGE / OWNERS[library]
    offenders = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
                 if owner not in path.parents and library in imported_roots(path.read_text())]
    assert offenders == [], f"{library} is imported outside {owner.name}/ in {offenders}"


def test_names_is_a_leaf_both_sides_can_import():
    assert imported_roots((PACKAGE / "names.py").read_text()) <= {"__future__", "re"}


def test_the_frame_pattern_is_written_in_one_place():
    """Numbered frames are named by names.frame_name / FRAME_PATTERN, never by a copied format string."""
    copies = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
              if path.name != "names.py" and ":06d}" in path.read_text()]
    assert copies == []


def called_names(source: str) -> set[str]:
    calls = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            calls.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return calls


@pytest.mark.parametrize(("function", "home"), [("create_from_options", "pose/landmarker.py"), ("extract_poses", "pose/pipeline.py"),
                                                ("smooth_poses", "pose/pipeline.py"), ("normalize_poses", "pose/pipeline.py")])
def test_each_pose_step_is_called_from_one_place(function, home):
    """Training, transfer, evaluation and the jobs agree on their poses because they share one path to them."""
    callers = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
               if function in called_names(path.read_text())]
    assert callers == [home]
