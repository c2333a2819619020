"""Run a playbook on localhost with ansible-playbook and read its results as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def run_playbook(tasks: list[dict], *extra: str, timeout: float = 300) -> list[dict]:
    """Run ``tasks`` in one play on localhost; return each task's entry of the
    ansible.posix.json callback (``task`` with its duration, ``hosts`` with results).

    The collection comes from this checkout (ansible.cfg), the modules run with the
    test's own Python, and a failing task fails here with the playbook's output.
    """
    play = [
        {"name": "Run", "hosts": "localhost", "gather_facts": False, "tasks": tasks}
    ]
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "play.yml"
        playbook.write_text(yaml.safe_dump(play))
        completed = subprocess.run(
            [
                str(Path(sys.executable).with_name("ansible-playbook")),
                "-i",
                "localhost,",
                "-c",
                "local",
                str(playbook),
                *extra,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=timeout,
        )
    if completed.returncode != 0:
        raise AssertionError(completed.stderr + completed.stdout)
    return json.loads(completed.stdout)["plays"][0]["tasks"]
