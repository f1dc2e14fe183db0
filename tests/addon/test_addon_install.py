"""The extension as users get it: the manifest, the zip Blender's own tool builds and validates,
installing and enabling it, and what it registers."""
from __future__ import annotations

import ast
import sys
import tomllib
import zipfile

import pytest
from addon_helpers import ADDON_DIR, ADDON_MODULE, MANIFEST, pure

OPERATORS = {"transfer_motion": "Transfer Motion", "train_target": "Train Target Model", "preview_poses": "Preview Poses",
             "cancel_job": "Cancel Job", "refresh_models": "Refresh Models", "test_connection": "Test Connection",
             "start_server": "Start Server", "stop_server": "Stop Server"}
BPY_FREE = ("background", "client", "connection", "jobstate", "launcher", "messages", "model_list", "naming", "packing",
            "pose_file", "result_download", "rig_mapping", "server_status", "session")


def test_manifest_says_what_blender_and_the_brief_require():
    manifest = tomllib.loads(MANIFEST.read_text())
    assert manifest["schema_version"] == "1.0.0" and manifest["id"] == "edn_motion_transfer" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"] and manifest["tags"] == ["Sequencer"]
    assert manifest["name"] and manifest["tagline"] and manifest["maintainer"] and manifest["version"]
    assert set(manifest["permissions"]) == {"files", "network"}
    for reason in manifest["permissions"].values():
        assert len(reason) <= 64 and reason[-1] not in ".!?,;:", reason


def test_addon_imports_nothing_outside_blender_and_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"bpy", "addon_utils", "bpy_extras", "mathutils", "numpy"}  # numpy ships with Blender
    for source in ADDON_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{source.name} imports {name}"


@pytest.mark.parametrize("name", BPY_FREE)
def test_logic_modules_run_without_blender(name):
    module = pure(name)
    assert "bpy" not in vars(module) and not any(getattr(v, "__name__", "") == "bpy" for v in vars(module).values())


def _sibling_imports(source) -> set[str]:
    """The add-on modules a module imports (`from . import x`, `from .x import y`), inside functions too."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {alias.name for alias in node.names}
    return found


def test_modules_import_each_other_without_a_circle():
    imports = {source.stem: _sibling_imports(source) for source in ADDON_DIR.glob("*.py")}

    def reaches(start: str, path: tuple[str, ...]) -> None:
        for name in imports.get(start, ()):
            assert name not in path, f"import circle: {' -> '.join((*path, name))}"
            reaches(name, (*path, name))

    for name in imports:
        reaches(name, (name,))


def test_modules_stay_small():
    for source in ADDON_DIR.glob("*.py"):
        assert len(source.read_text().splitlines()) <= 400, source.name


def test_zip_holds_the_manifest_beside_the_package(extension_zip):
    with zipfile.ZipFile(extension_zip) as zf:
        names = set(zf.namelist())
    assert {"blender_manifest.toml", "__init__.py", "client.py", "poller.py", "strips.py"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert names == {"blender_manifest.toml"} | {p.name for p in ADDON_DIR.glob("*.py")}


def test_installed_extension_is_enabled_and_registers_everything(addon):
    import addon_utils
    import bpy

    assert addon_utils.check(ADDON_MODULE) == (True, True)
    assert addon.__file__.startswith(bpy.utils.user_resource("EXTENSIONS"))
    for name, label in OPERATORS.items():
        op = getattr(bpy.ops.edn, name)
        assert op.get_rna_type().name == label, name
    assert bpy.context.preferences.addons[ADDON_MODULE].preferences.mode == "LOCAL"
    assert "edn" in bpy.types.Scene.bl_rna.properties
    assert bpy.app.timers.is_registered(addon.poller.tick)
    user_dir = addon.preferences.user_dir()
    assert user_dir.is_dir() and str(user_dir).startswith(bpy.utils.user_resource("EXTENSIONS"))


def test_disable_and_enable_again(addon, tmp_path):
    import addon_utils
    import bpy

    assert addon.held_out_sample.show("job", ("tag", tmp_path / "sample.png")) is not None  # a training's thumbnail
    addon_utils.disable(ADDON_MODULE, default_set=True)
    assert not hasattr(bpy.types.Scene, "edn") and not bpy.app.timers.is_registered(addon.poller.tick)
    assert addon.held_out_sample.preview("job") is None  # the preview collection was freed
    addon_utils.enable(ADDON_MODULE, default_set=True)
    assert sys.modules[ADDON_MODULE] is addon  # unchanged files: the same module, so fixtures stay valid
    assert hasattr(bpy.types.Scene, "edn") and bpy.app.timers.is_registered(addon.poller.tick)
