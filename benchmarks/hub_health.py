#!/usr/bin/env python3
"""Compare tamyla.tradehub.hub_health with a sequential ansible.builtin.uri loop.

Seven contract servers on loopback answer /healthz, /readyz and /version after an
injected latency (one of them slower than the others). One playbook checks them with
hub_health, then with a uri loop over the same 21 endpoints; the json callback gives
each task's duration. The aim: checking seven hubs costs about as much as the slowest
single probe, so hub_health's duration over the slowest latency should be close to 1.

    .venv/bin/python benchmarks/hub_health.py [--latency 0.2] [--slowest 0.4]
"""

from __future__ import annotations

import argparse
import datetime
import sys
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.contract_server import Behaviour, ContractServer  # noqa: E402
from tests.support.playbook import run_playbook  # noqa: E402

HUBS = [
    "sourcing",
    "content",
    "contacts",
    "campaigns",
    "demand",
    "shipping",
    "services",
]


def task_seconds(task: dict) -> float:
    duration = task["task"]["duration"]
    start, end = (
        datetime.datetime.fromisoformat(duration[k].replace("Z", "+00:00"))
        for k in ("start", "end")
    )
    return (end - start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per answer")
    parser.add_argument("--slowest", type=float, default=0.4, help="the slowest hub's")
    args = parser.parse_args()

    with ExitStack() as stack:
        servers = {
            hub: stack.enter_context(
                ContractServer(
                    Behaviour(hub=hub, delay=args.slowest if i == 0 else args.latency)
                )
            )
            for i, hub in enumerate(HUBS)
        }
        hubs = [{"name": hub, "url": server.url} for hub, server in servers.items()]
        endpoints = [
            "%s/%s" % (s.url, e)
            for s in servers.values()
            for e in ("healthz", "readyz", "version")
        ]
        tasks = run_playbook(
            [
                {
                    "name": "Check with hub_health",
                    "tamyla.tradehub.hub_health": {"hubs": hubs},
                },
                {
                    "name": "Probe the slowest endpoint once with uri",
                    "ansible.builtin.uri": {"url": "%s/readyz" % servers[HUBS[0]].url},
                },
                {
                    "name": "Check with a uri loop",
                    "ansible.builtin.uri": {"url": "{{ item }}"},
                    "loop": endpoints,
                },
            ]
        )
    health, single, uri = (task_seconds(t) for t in tasks)
    print("hubs: %d, endpoints: %d" % (len(HUBS), len(endpoints)))
    print(
        "injected latency: %.3f s per answer, slowest hub %.3f s"
        % (args.latency, args.slowest)
    )
    print("hub_health, all %d endpoints:    %.3f s" % (len(endpoints), health))
    print("uri, the slowest endpoint once: %.3f s" % single)
    print("uri loop, all %d endpoints:      %.3f s" % (len(endpoints), uri))
    print("ratio uri loop / hub_health:             %.1f" % (uri / health))
    print(
        "ratio hub_health / single slowest probe: %.2f (aim: about 1)"
        % (health / single)
    )


if __name__ == "__main__":
    main()
