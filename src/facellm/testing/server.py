"""Run an ASGI app (the facellm server) with uvicorn in a background thread on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BackgroundServer:
    """`with BackgroundServer(app) as server: server.url -> http://127.0.0.1:PORT`."""

    def __init__(self, app, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class ServerProcess:
    """`facellm serve ARGS...` as its own process on a free loopback port, up once `/health` answers:
    `with ServerProcess("--model", DIR) as server: server.url, server.memory_mb()`."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, timeout_s: float = 120) -> None:
        self.port = free_port()
        self.args, self.env, self.timeout_s = args, env, timeout_s
        self.process: subprocess.Popen[str]  # started by __enter__

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        import os
        import subprocess
        import sys
        import tempfile

        import httpx

        command = [sys.executable, "-m", "facellm.cli", "serve", "--port", str(self.port), *self.args]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **(self.env or {})}
        # The server's log goes to a file: an unread pipe fills up and then blocks the server mid-request.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        deadline = time.time() + self.timeout_s
        while time.time() < deadline and self.process.poll() is None:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.process.kill()
        raise RuntimeError(f"the server did not come up: {self.log_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()

    def log_text(self) -> str:
        """What the server has written to stderr so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def memory_mb(self) -> dict[str, float]:
        """The server's resident memory now (`VmRSS`) and at its peak so far (`VmHWM`), in MB (Linux /proc)."""
        fields = {}
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    fields[name] = int(value.split()[0]) / 1024
        return fields
