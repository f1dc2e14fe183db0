"""Finding, starting, reusing and stopping the local server (no Blender needed)."""
from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest
from addon_helpers import pure

launcher = pure("launcher")
connection = pure("connection")
ServerError = pure("client").ServerError


def test_project_python_is_found_above_the_addon_or_from_the_environment(tmp_path):
    project = tmp_path / "project"
    python = project / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    (project / "server" / "edn_server").mkdir(parents=True)
    installed_addon = project / "build" / "extension" / "edn_motion_transfer"
    installed_addon.mkdir(parents=True)
    assert launcher.find_project_python(installed_addon, env={}) == str(python)
    assert launcher.find_project_python(tmp_path, env={}) is None  # nothing above: no guess
    assert launcher.find_project_python(tmp_path, env={"EDN_PYTHON": "/opt/edn/bin/python"}) == "/opt/edn/bin/python"


def test_default_data_dir_matches_the_server(tmp_path):
    assert launcher.default_data_dir({"EDN_HOME": str(tmp_path)}) == tmp_path
    assert launcher.default_data_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "edn"
    assert launcher.default_data_dir({}) == Path.home() / ".local" / "share" / "edn"


def test_a_running_server_is_reused_not_started_twice(edn_server, server_python):
    info = json.loads((edn_server["data_dir"] / "server.json").read_text())
    client = launcher.start_server(launcher.LocalServer(str(server_python), str(edn_server["data_dir"]), str(edn_server["log"])))
    assert client.url == edn_server["url"] and client.token == edn_server["token"]
    assert json.loads((edn_server["data_dir"] / "server.json").read_text())["pid"] == info["pid"]


def test_stale_discovery_file_means_not_running(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = tmp_path / "token"
    token.write_text("t")
    (tmp_path / "server.json").write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": 999999, "token_file": str(token)}))
    assert launcher.running_client(tmp_path) is None
    assert launcher.stop_server(tmp_path) is False  # pid 999999 is not an edn server: never signalled
    settings = connection.ServerSettings(mode="LOCAL", data_dir=str(tmp_path))
    with pytest.raises(ServerError) as info:
        connection.client_for(settings, start=False)
    assert info.value.code == "NOT_RUNNING" and "starts with the first job" in info.value.message


def test_missing_python_is_a_clear_error(tmp_path):
    with pytest.raises(ServerError) as info:
        launcher.start_server(launcher.LocalServer(str(tmp_path / "nope" / "python"), str(tmp_path / "data"), str(tmp_path / "log")))
    assert info.value.code == "PYTHON_MISSING" and "EDN_PYTHON" in info.value.message and "preferences" in info.value.message


def test_a_python_without_the_server_fails_with_its_log(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho \"No module named edn_server\" >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "logs" / "server.log"
    with pytest.raises(ServerError) as info:
        launcher.start_server(launcher.LocalServer(str(fake), str(tmp_path / "data"), str(log)))
    assert info.value.code == "START_FAILED" and "No module named edn_server" in info.value.message and str(log) in info.value.message


def test_start_then_stop_a_server(server_python, tmp_path):
    server = launcher.LocalServer(str(server_python), str(tmp_path / "data"), str(tmp_path / "server.log"))
    client = launcher.start_server(server)
    assert client.health()["version"]
    pid = json.loads((tmp_path / "data" / "server.json").read_text())["pid"]
    assert (tmp_path / "server.log").read_text().count("starting:") == 1
    assert launcher.stop_server(server.data_dir) is True
    assert not (tmp_path / "data" / "server.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert launcher.stop_server(server.data_dir) is False


def test_remote_settings_are_checked_before_any_io():
    remote = connection.ServerSettings(mode="REMOTE", url="http://gpu-box.example:8765", token="t", online_access=False)
    problem = connection.settings_problem(remote)
    assert problem.code == "OFFLINE" and "Allow Online Access" in problem.message
    assert connection.settings_problem(connection.ServerSettings(mode="REMOTE", url="http://127.0.0.1:9", token="t")) is None
    assert connection.settings_problem(connection.ServerSettings(mode="REMOTE", url="", online_access=True)).code == "NOT_CONFIGURED"
    no_token = connection.ServerSettings(mode="REMOTE", url="http://gpu-box.example:8765", online_access=True)
    assert "token" in connection.settings_problem(no_token).message
