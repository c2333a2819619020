"""moto in server mode on a free loopback port, for tests of the AWS roles.

The server is tests/support/moto_server.py (moto with the AWS behaviours the role
relies on) in a process of its own; it keeps everything in memory, so each test that
starts one gets an empty account. Only fake credentials are ever used.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.support.services import LOOPBACK, ServiceError, free_port

SERVER = Path(__file__).resolve().with_name("moto_server.py")

# Fake credentials, never real ones: no profile or file of the machine is read.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "fake-secret-key-of-the-tests",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


@contextlib.contextmanager
def moto_server(timeout: float = 30) -> Iterator[str]:
    """Start moto on 127.0.0.1 and yield its endpoint URL; stop it afterwards."""
    port = free_port()
    endpoint = "http://%s:%d" % (LOOPBACK, port)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, str(SERVER), "-H", LOOPBACK, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **FAKE_CREDENTIALS},
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(endpoint + "/moto-api/", timeout=2):
                        break
                except OSError as exc:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise ServiceError(
                            "moto did not start on %s (%s): %s"
                            % (
                                endpoint,
                                exc,
                                log.read().decode(errors="replace")[-2000:],
                            )
                        ) from exc
                    time.sleep(0.2)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
