"""The hub's connections and checks: database pool, event bus, schema and license.

Dependencies may be down when the hub starts and may come and go while it runs; the
process keeps serving ``/healthz`` and reports the state in ``/readyz`` and in the
``tradehub_dependency_up`` gauges instead of exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from tradehub_reference_hub.config import Config
from tradehub_reference_hub.entities import EntitySpec
from tradehub_reference_hub.license import LicenseState, LicenseStatus
from tradehub_reference_hub.metrics import Metrics
from tradehub_reference_hub.migrations import SCHEMA_VERSION, applied_version_async
from tradehub_reference_hub.store import rfc3339

log = logging.getLogger("tradehub.runtime")

CHECK_TIMEOUT = 2.0
REFRESH_INTERVAL = 15.0
#: How long a request waits for a pooled connection before it answers 503.
REQUEST_POOL_TIMEOUT = 5.0
STREAM_MAXLEN = 100_000
CHECK_NAMES = ("database", "event_bus", "schema", "license")


class DependencyUnavailable(Exception):
    """A dependency failed while serving a request: the API answers 503."""


@dataclass
class CheckResult:
    ok: bool
    detail: str | None = None
    warning: bool = False

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"ok": self.ok}
        if self.detail:
            doc["detail"] = self.detail
        if self.warning:
            doc["warning"] = True
        return doc


def first_line(exc: BaseException) -> str:
    """A short, secret-free description of a driver error."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _ConnectErrors:
    """Remembers why the pool last failed to connect, for the readiness detail."""

    last: str | None = None


def _connection_class(sink: _ConnectErrors) -> type[psycopg.AsyncConnection[Any]]:
    class _Connection(psycopg.AsyncConnection[Any]):
        @classmethod
        async def connect(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            try:
                conn = await super().connect(*args, **kwargs)
            except psycopg.Error as exc:
                sink.last = first_line(exc)
                raise
            sink.last = None
            return conn

    return _Connection


class HubRuntime:
    """Everything the HTTP layer needs, created in the app's lifespan."""

    def __init__(self, config: Config, entity: EntitySpec, metrics: Metrics) -> None:
        self.config = config
        self.entity = entity
        self.metrics = metrics
        self.stream = f"tradehub:{config.hub}:events"
        self.license = LicenseState(
            config.license_file,
            config.license_keys_dir,
            hub=config.hub,
            customer_id=config.customer_id,
            deployment_id=config.deployment_id,
        )
        self._connect_errors = _ConnectErrors()
        self._pool: AsyncConnectionPool[Any] | None = None
        self._redis: Redis | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._last_up: dict[str, bool] = {}
        self._schema_version: int | None = None

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        assert self._pool is not None, "the runtime is not started"
        return self._pool

    @property
    def redis(self) -> Redis:
        assert self._redis is not None, "the runtime is not started"
        return self._redis

    async def start(self) -> None:
        """Open the pool and the Redis client without waiting for either to answer."""
        schema = self.config.database_schema
        self._pool = AsyncConnectionPool(
            self.config.database_url,
            min_size=1,
            max_size=self.config.database_pool_size,
            open=False,
            name=f"tradehub-{self.config.hub}",
            timeout=REQUEST_POOL_TIMEOUT,
            # Give up reconnecting quickly: the next request or check starts a fresh
            # attempt at once, instead of waiting out an ever longer backoff.
            reconnect_timeout=5.0,
            check=AsyncConnectionPool.check_connection,
            connection_class=_connection_class(self._connect_errors),
            kwargs={
                "autocommit": False,
                "connect_timeout": 5,
                "options": f"-c search_path={schema} -c TimeZone=UTC",
                "application_name": f"tradehub-{self.config.hub}",
            },
        )
        await self._pool.open(wait=False)
        self._redis = Redis.from_url(
            self.config.event_bus_url,
            socket_connect_timeout=CHECK_TIMEOUT,
            socket_timeout=CHECK_TIMEOUT,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        self.reload_license()
        self._refresher = asyncio.create_task(self._refresh_loop())

    async def stop(self) -> None:
        """Stop the background checks and close the pool and the event bus client."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._pool is not None:
            await self._pool.close(timeout=5.0)
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.aclose()
        log.info("connections closed")

    # -- license -----------------------------------------------------------------

    def reload_license(self) -> LicenseStatus:
        """(Re)read the license file and trusted keys; log the outcome, never keys."""
        status = self.license.load()
        for problem in self.license.key_problems:
            log.warning("trusted key skipped: %s", problem)
        lic = status.license
        log.log(
            logging.WARNING if not status.ok or status.warning else logging.INFO,
            "license read: %s",
            status.detail,
            extra={
                "license_id": lic.license_id if lic else None,
                "expires_at": rfc3339(lic.expires_at) if lic else None,
                "license_ok": status.ok,
                "license_file": str(self.config.license_file),
            },
        )
        self.metrics.set_license_days_left(status.days_left if status.ok else None)
        return status

    # -- checks ------------------------------------------------------------------

    async def check_database(self) -> CheckResult:
        try:
            async with self.pool.connection(timeout=CHECK_TIMEOUT - 0.1) as conn:
                await conn.execute("SELECT 1")
        except PoolTimeout:
            reason = self._connect_errors.last or "all connections are busy"
            return CheckResult(False, f"no connection within 2 s: {reason}")
        except psycopg.Error as exc:
            return CheckResult(False, first_line(exc))
        return CheckResult(True)

    async def check_event_bus(self) -> CheckResult:
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            return CheckResult(False, first_line(exc))
        return CheckResult(True)

    async def check_schema(self) -> CheckResult:
        """Compare the applied schema version with the one this artifact needs.

        While the database cannot be reached, the version last read stands: the
        outage is the ``database`` check's to report, and the schema did not change.
        """
        schema = self.config.database_schema
        try:
            async with self.pool.connection(timeout=CHECK_TIMEOUT - 0.1) as conn:
                version = await applied_version_async(conn, schema)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            if self._schema_version is None:
                return CheckResult(False, "database unavailable, version not known")
            version = self._schema_version
            stale = " (as last read; the database is unavailable)"
            if not isinstance(exc, PoolTimeout):
                stale = f" (as last read; {first_line(exc)})"
            return self._schema_result(version, stale)
        except psycopg.Error as exc:
            return CheckResult(False, first_line(exc))
        self._schema_version = version
        return self._schema_result(version, "")

    def _schema_result(self, version: int, note: str) -> CheckResult:
        if version == SCHEMA_VERSION:
            return CheckResult(True, f"version {version}{note}")
        if version < SCHEMA_VERSION:
            return CheckResult(
                False,
                f"version {version}{note}, this artifact needs version "
                f"{SCHEMA_VERSION}: run tradehub-hub migrate",
            )
        return CheckResult(
            False,
            f"version {version}{note} is newer than version {SCHEMA_VERSION} that "
            "this artifact needs",
        )

    async def check_license(self) -> CheckResult:
        status = self.license.status()
        self.metrics.set_license_days_left(status.days_left if status.ok else None)
        return CheckResult(status.ok, status.detail, status.warning)

    async def _timed(
        self, name: str, check: Callable[[], Awaitable[CheckResult]]
    ) -> CheckResult:
        try:
            result = await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except TimeoutError:
            result = CheckResult(False, "no answer within 2 s")
        except Exception as exc:  # a check must report, never break /readyz
            log.exception("check %s raised", name)
            result = CheckResult(False, f"check failed: {type(exc).__name__}")
        if name in ("database", "event_bus"):
            self._record_dependency(name, result)
        return result

    def _record_dependency(self, name: str, result: CheckResult) -> None:
        self.metrics.set_dependency(name, result.ok)
        previous = self._last_up.get(name)
        self._last_up[name] = result.ok
        if previous is None or previous == result.ok:
            if previous is None and not result.ok:
                log.warning("%s is unavailable: %s", name, result.detail)
            return
        if result.ok:
            log.info("%s is available again", name)
        else:
            log.warning("%s is unavailable: %s", name, result.detail)

    async def readiness(self) -> tuple[bool, dict[str, CheckResult]]:
        """Run the four checks concurrently, each with its own 2 s timeout."""
        checks = {
            "database": self.check_database,
            "event_bus": self.check_event_bus,
            "schema": self.check_schema,
            "license": self.check_license,
        }
        results = await asyncio.gather(
            *(self._timed(name, check) for name, check in checks.items())
        )
        by_name = dict(zip(checks, results, strict=True))
        return all(r.ok for r in results), by_name

    async def refresh_dependencies(self) -> None:
        """Refresh the dependency and license gauges without a scrape or a probe."""
        await asyncio.gather(
            self._timed("database", self.check_database),
            self._timed("event_bus", self.check_event_bus),
            self.check_license(),
        )

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self.refresh_dependencies()
            except Exception:
                log.exception("background dependency check failed")
            await asyncio.sleep(REFRESH_INTERVAL)

    # -- business API support ------------------------------------------------------

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection in a transaction, committed when the block succeeds."""
        try:
            async with self.pool.connection() as conn:
                yield conn
        except PoolTimeout:
            reason = self._connect_errors.last or "all connections are busy"
            raise DependencyUnavailable(f"database unavailable: {reason}") from None
        except psycopg.errors.UndefinedTable:
            raise DependencyUnavailable(
                "the database schema is not at the version this hub needs"
            ) from None
        except psycopg.OperationalError as exc:
            raise DependencyUnavailable(
                f"database unavailable: {first_line(exc)}"
            ) from None

    async def publish(self, verb: str, row: dict[str, Any]) -> None:
        """Write one event after the row is committed; a failure is logged, not raised.

        The database is the record: the client still gets its 201.
        """
        event_type = self.entity.event_type(verb)
        fields = {
            "type": event_type,
            "id": str(uuid.uuid4()),
            "hub": self.config.hub,
            "entity_id": str(row["id"]),
            "occurred_at": rfc3339(dt.datetime.now(dt.UTC)),
            "data": json.dumps(row, separators=(",", ":"), ensure_ascii=False),
        }
        try:
            await asyncio.wait_for(
                self.redis.xadd(
                    self.stream, fields, maxlen=STREAM_MAXLEN, approximate=True
                ),
                CHECK_TIMEOUT,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self.metrics.event_failed(event_type)
            log.error(
                "event not published: %s",
                first_line(exc) or type(exc).__name__,
                extra={"event_type": event_type, "entity_id": fields["entity_id"]},
            )
            return
        self.metrics.event_published(event_type)
