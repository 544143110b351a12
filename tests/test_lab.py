"""`make lab`: its command line, and a JupyterLab started with it that answers and runs a kernel."""
import json
import re
import uuid

import pytest
import websocket

from tutorlib import lab
from tutorlib.lab import lab_command, running_lab
from tutorlib.paths import notebooks_dir, repo_root


def test_make_lab_runs_the_entry_point():
    makefile = (repo_root() / "Makefile").read_text()
    recipe = re.search(r"^lab:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe and "$(PY) -m tutorlib.lab" in recipe.group(1), "the lab target must call python -m tutorlib.lab"


def test_command_serves_the_notebooks(monkeypatch):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    command = lab_command(extra=["--port", "8899"])
    assert command[1:] == ["-m", "jupyterlab", f"--ServerApp.root_dir={notebooks_dir()}", "--port", "8899"]
    monkeypatch.setattr(lab.os, "geteuid", lambda: 0)
    assert "--allow-root" in lab_command()


def test_main_replaces_itself_by_jupyter_lab(monkeypatch):
    calls = []
    monkeypatch.setattr(lab.os, "execv", lambda path, argv: calls.append((path, argv)))
    lab.main(["--no-browser"])
    [(path, argv)] = calls
    assert path == argv[0] and argv == lab_command(extra=["--no-browser"])


def execute(server, kernel_id: str, code: str, timeout: float = 60.0) -> tuple[str, dict]:
    """Send `code` to a kernel over the server's websocket: (what it printed, the execute reply's content)."""
    url = server.url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels?token={server.token}"
    socket = websocket.create_connection(url, timeout=timeout)
    try:
        msg_id = uuid.uuid4().hex
        socket.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        printed = ""
        while True:
            message = json.loads(socket.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "stream":
                printed += message["content"]["text"]
            if message["msg_type"] == "execute_reply":
                return printed, message["content"]
    finally:
        socket.close()


def test_lab_answers_and_runs_a_kernel():
    settings = {"@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"}}
    with running_lab(settings=settings) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert "started" in json.loads(server.api("api/status"))
        tracker = json.loads(server.api("lab/api/settings/@jupyterlab/notebook-extension:tracker"))
        assert json.loads(tracker["raw"]) == {"windowingMode": "none"}
        kernel = json.loads(server.api("api/kernels", method="POST", body=json.dumps({"name": "python3"}).encode()))
        try:
            printed, reply = execute(server, kernel["id"], "import tutorlib.paths\nprint(tutorlib.paths.repo_root())")
            assert reply["status"] == "ok", reply
            assert printed.strip() == str(repo_root())
        finally:
            server.api(f"api/kernels/{kernel['id']}", method="DELETE")
        assert json.loads(server.api("api/kernels")) == []
    assert server.process.returncode is not None


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match=r"jupyter lab exited with code \d+ before answering"):
        with running_lab(tmp_path / "missing"):
            pass


def test_settings_need_plugin_ids():
    with pytest.raises(ValueError, match="plugin ids like '@jupyterlab/notebook-extension:tracker', got 'tracker'"):
        with running_lab(settings={"tracker": {}}):
            pass
