"""The ``tradehub-hub`` command: ``serve``, ``migrate`` and ``version`` (contract §2).

Exit codes are part of the contract: 2 for bad configuration (before any connection is
opened), 1 for a failed migration, 0 otherwise. The heavy imports happen only after the
configuration is valid, so that a typo is reported at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from tradehub_reference_hub import __version__
from tradehub_reference_hub.config import (
    Config,
    ConfigError,
    load_config,
    load_hub_name,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _config_error(exc: ConfigError) -> int:
    print("tradehub-hub: invalid configuration:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_CONFIG


def _print_json(document: dict[str, object]) -> None:
    print(json.dumps(document, separators=(", ", ": ")), flush=True)


def cmd_version() -> int:
    """Print the /version document; needs only TRADEHUB_HUB_NAME and does no I/O."""
    try:
        hub = load_hub_name(os.environ)
    except ConfigError as exc:
        return _config_error(exc)
    from tradehub_reference_hub.app import version_document

    _print_json(version_document(hub))
    return EXIT_OK


def cmd_migrate(config: Config) -> int:
    """Apply missing schema versions; stdout carries only the result line."""
    import psycopg

    from tradehub_reference_hub.logs import setup_logging
    from tradehub_reference_hub.migrations import MigrationError, migrate
    from tradehub_reference_hub.runtime import first_line

    setup_logging(
        hub=config.hub,
        log_format=config.log_format,
        level=config.log_level,
        secrets=config.secrets(),
        stream=sys.stderr,
    )
    log = logging.getLogger("tradehub.migrate")
    base = {"hub": config.hub, "schema": config.database_schema}
    try:
        result = migrate(config)
    except MigrationError as exc:
        log.error("migration refused: %s", exc)
        _print_json({**base, "error": str(exc)})
        return EXIT_FAILED
    except psycopg.Error as exc:
        message = first_line(exc)
        for secret in config.secrets():
            message = message.replace(secret, "***")
        log.error("migration failed: %s", message)
        _print_json({**base, "error": f"database error: {message}"})
        return EXIT_FAILED
    log.info(
        "schema %s at version %s",
        config.database_schema,
        result["to_version"],
        extra={"applied": result["applied"], "changed": result["changed"]},
    )
    _print_json(result)
    return EXIT_OK


def cmd_serve(config: Config) -> int:
    """Serve HTTP in the foreground until SIGTERM or SIGINT, then drain and exit 0."""
    import uvicorn

    from tradehub_reference_hub.app import create_app
    from tradehub_reference_hub.logs import setup_logging

    setup_logging(
        hub=config.hub,
        log_format=config.log_format,
        level=config.log_level,
        secrets=config.secrets(),
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=config.listen_host,
            port=config.listen_port,
            log_config=None,
            log_level=config.log_level,
            access_log=False,
            lifespan="on",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=config.shutdown_grace_seconds,  # type: ignore[arg-type]
        )
    )

    def request_stop(signum: int, frame: object) -> None:
        # Uvicorn replaces this handler while it serves and re-raises the signal once
        # it has drained; by then there is nothing left to do, and the exit is clean.
        server.should_exit = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # The app installs the real SIGHUP handler; until then a reload request is moot.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log = logging.getLogger("tradehub.serve")
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind or start the app
        if exc.code not in (None, 0):
            log.error("the server could not start (see the lines above)")
            return EXIT_FAILED
        raise
    if not server.started:
        log.error("the server could not start (see the lines above)")
        return EXIT_FAILED
    log.info("stopped after a clean drain")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradehub-hub",
        description="Private Trade Hub reference hub; configured by TRADEHUB_* "
        "environment variables (see docs/hub-contract.md).",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the HTTP server until SIGTERM/SIGINT")
    commands.add_parser("migrate", help="bring the hub's schema to this version")
    commands.add_parser("version", help="print the /version document as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        return cmd_version()
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        return _config_error(exc)
    if args.command == "migrate":
        return cmd_migrate(config)
    return cmd_serve(config)


if __name__ == "__main__":
    sys.exit(main())
