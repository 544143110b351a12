"""JupyterLab on the tutorial notebooks: `python -m tutorlib.lab` is what `make lab` runs.

Arguments after the module name go to `jupyter lab` unchanged (e.g. `--port 8899`). The tests start
JupyterLab through `running_lab`, which uses the same command line, so they test what `make lab` opens.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tutorlib.paths import notebooks_dir


def lab_command(root: Path | None = None, extra: Sequence[str] = ()) -> list[str]:
    """The command line of `make lab`: this Python's JupyterLab serving `root` (default: notebooks/).

    As root (containers, CI) it adds `--allow-root`, without which JupyterLab refuses to start.
    """
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root or notebooks_dir()}", *as_root, *extra]


@dataclass
class LabServer:
    """A JupyterLab started by `running_lab`: its base `url` (ending in "/"), `token` and process."""

    url: str
    token: str
    process: subprocess.Popen
    log: Path

    def api(self, path: str, method: str = "GET", body: bytes | None = None, timeout: float = 30.0) -> bytes:
        """The body of the server's answer to `method` on `path` (e.g. "api/status") with a JSON `body`,
        sent with the token."""
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.read()

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the server's output (for error messages)."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_answering(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {server.process.returncode} before answering; "
                               f"its output ends with:\n{server.log_tail()}")
        try:
            server.api("api/status", timeout=5)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter lab did not answer on {server.url} within {timeout:.0f} s; "
                                   f"its output ends with:\n{server.log_tail()}") from None
            time.sleep(0.5)


@contextlib.contextmanager
def running_lab(root: Path | None = None, env: Mapping[str, str] | None = None, extra: Sequence[str] = (),
                settings: Mapping[str, dict] | None = None, start_timeout: float = 120.0) -> Iterator[LabServer]:
    """JupyterLab as `make lab` starts it, on 127.0.0.1, a free port and a random token, without a browser.

    Its settings, workspaces, runtime files and Jupyter config live in a temporary folder (nothing in
    the user's home is read or written); `env` adds environment variables, which its kernels inherit;
    `settings` maps a plugin id ("@jupyterlab/notebook-extension:tracker") to its user settings.
    Yields once `/api/status` answers; on exit the server is stopped (killed if it does not stop).
    """
    with tempfile.TemporaryDirectory(prefix="tutorlib-lab-") as home:
        home = Path(home)
        for plugin, values in (settings or {}).items():
            package, _, name = plugin.partition(":")
            if not package or not name:
                raise ValueError(f"settings keys are plugin ids like '@jupyterlab/notebook-extension:tracker', "
                                 f"got {plugin!r}")
            path = home / "settings" / package / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        token, port = secrets.token_hex(16), free_port()
        isolated = {f"JUPYTER_{name}_DIR": str(home / name.lower()) for name in ("CONFIG", "DATA", "RUNTIME")}
        command = lab_command(root, ["--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                                     "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
                                     f"--LabApp.user_settings_dir={home / 'settings'}",
                                     f"--LabApp.workspaces_dir={home / 'workspaces'}", *extra])
        log = home / "server.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env={**os.environ, **isolated, **(env or {})})
        server = LabServer(f"http://127.0.0.1:{port}/", token, process, log)
        try:
            _wait_until_answering(server, start_timeout)
            yield server
        finally:
            process.terminate()  # jupyter server shuts its kernels down on SIGTERM
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """Replace this process by `jupyter lab` on notebooks/ with the given extra arguments."""
    command = lab_command(extra=sys.argv[1:] if argv is None else argv)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
