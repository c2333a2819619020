"""Run the reference hub's ``tradehub-hub`` command as a real process, for tests.

A hub started here is what the collection starts on a host: the console script of the
installed wheel, configured only by ``TRADEHUB_*`` variables, listening on a free
loopback port. Its stdout (the JSON log) and stderr go to files that tests can read.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.support.services import free_port


def hub_command() -> str:
    """The ``tradehub-hub`` script next to this Python, else the one on PATH."""
    beside = Path(sys.executable).with_name("tradehub-hub")
    if beside.exists():
        return str(beside)
    found = shutil.which("tradehub-hub")
    if found is None:
        raise RuntimeError(
            "tradehub-hub not found: pip install -e hubs/reference --no-deps "
            "into the virtualenv that runs the tests"
        )
    return found


def clean_environment(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any TRADEHUB_* variable, plus *env*."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRADEHUB_")}
    base.update(env)
    return base


def run_hub_command(
    subcommand: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``tradehub-hub <subcommand>`` to completion and capture its output."""
    return subprocess.run(
        [hub_command(), subcommand],
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class HubProcess:
    """``tradehub-hub serve`` in the foreground of a child process."""

    def __init__(self, env: Mapping[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.env = {"TRADEHUB_LISTEN": f"127.0.0.1:{self.port}", **env}
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = workdir / f"hub-{self.port}.stdout"
        self.stderr_path = workdir / f"hub-{self.port}.stderr"
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 20.0) -> HubProcess:
        """Start the server and wait until ``/healthz`` answers."""
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [hub_command(), "serve"],
                env=clean_environment(self.env),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"tradehub-hub serve exited with {self.process.returncode}:\n"
                    + self.output()
                )
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"hub did not answer in {timeout} s:\n{self.output()}"
                )
            time.sleep(0.05)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10, **kwargs)

    def send_signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.returncode = self.process.wait(timeout)
        return self.returncode

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.returncode = self.process.returncode
        return self.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return f"--- stdout\n{self.stdout()}--- stderr\n{self.stderr()}"

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines so far; a line that is not JSON fails loudly."""
        records = []
        text = self.stdout()
        if not text.endswith("\n"):
            text = text.rpartition("\n")[0]  # a line still being written
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise AssertionError(
                    f"stdout line {number} is not JSON: {line!r}"
                ) from exc
        return records

    def wait_for_log(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        after: int = 0,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Wait for a log record past index *after* that matches *predicate*."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.log_records()[after:]:
                if predicate(record):
                    return record
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no matching log line in {timeout} s:\n{self.output()}"
                )
            time.sleep(0.05)
