"""Logging on stdout as one JSON object per line (contract §8), or text for a person.

Every logger, uvicorn's included, goes through the root handler installed here, so the
collection and Kubernetes read one format. Known secrets are replaced by ``***`` in
every line as a last line of defence.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

#: The request being served, added to every log line written while serving it.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tradehub_request_id", default=None
)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_LEVELS.update(warning=logging.WARNING, error=logging.ERROR)


def _timestamp(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, dt.UTC)
    return moment.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


class _Formatter(logging.Formatter):
    def __init__(self, hub: str, secrets: Iterable[str]) -> None:
        super().__init__()
        self.hub = hub
        # Very short secrets would blank out ordinary words; URLs are refused with
        # such passwords nowhere, so only scrub the ones that can be told apart.
        self.secrets = [s for s in secrets if len(s) >= 4]

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "hub": self.hub,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if "request_id" not in doc and (request_id := request_id_var.get()):
            doc["request_id"] = request_id
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return doc

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class JsonFormatter(_Formatter):
    """``ts``, ``level``, ``hub``, ``logger``, ``msg`` and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(
            json.dumps(self.fields(record), default=str, ensure_ascii=False)
        )


class TextFormatter(_Formatter):
    """The same fields on one line for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        doc = self.fields(record)
        head = f"{doc.pop('ts')} {doc.pop('level').upper():<7} {doc.pop('logger')}:"
        msg = doc.pop("msg")
        doc.pop("hub")
        exc = doc.pop("exc", None)
        tail = " ".join(f"{key}={value}" for key, value in doc.items())
        line = f"{head} {msg}" + (f" [{tail}]" if tail else "")
        if exc:
            line += "\n" + exc
        return self.scrub(line)


def setup_logging(
    *,
    hub: str,
    log_format: str = "json",
    level: str = "info",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Send every log record to *stream* (stdout by default) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stdout)
    formatter_class = JsonFormatter if log_format == "json" else TextFormatter
    handler.setFormatter(formatter_class(hub, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.INFO))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
        uv.setLevel(logging.NOTSET)
    # psycopg's pool reports every checkout at INFO; keep that for debugging only.
    pool_level = logging.DEBUG if level == "debug" else logging.WARNING
    logging.getLogger("psycopg.pool").setLevel(pool_level)
    logging.captureWarnings(True)
