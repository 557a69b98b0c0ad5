"""The jobs actor: runs one scheduler job (services.scheduler.jobs.JOBS) for the `now` it was enqueued for.

Registered by the intake worker (`linju intake` consumes the `intake` and `jobs` queues) and by
`linju run`, where the in-process broker runs it in the same process. The scheduler process only
enqueues (services.scheduler.main).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import dramatiq

from services.scheduler.jobs import JOBS
from shared.config import CommunitiesConfig
from shared.queue.contracts import RUN_JOB, RunJob
from shared.runtime import Database, load_config
from shared.settings import Settings

log = logging.getLogger("linju.jobs")


class JobRunner:
    """Holds the worker loop's database engine (created on first use, on that loop)."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker, *, config: CommunitiesConfig | None = None):
        self.settings = settings
        self.broker = broker
        self.config = config or load_config(settings)
        self._database: Database | None = None

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database.connect(self.settings)
        return self._database

    async def run(self, name: str, now: datetime) -> int:
        """Run job `name` for `now`; returns the notifications it queued. An unknown name is logged and dropped."""
        job = JOBS.get(name)
        if job is None:
            log.error("unknown job dropped", extra={"job": name})
            return 0
        queued = await job(self.database, self.broker, self.config, now.astimezone(UTC))
        log.info("job done", extra={"job": name, "now": now.isoformat(), "queued": queued})
        return queued

    async def close(self) -> None:
        if self._database is not None:
            await self._database.close()


def register(broker: dramatiq.Broker, settings: Settings, **kwargs: object) -> JobRunner:
    runner = JobRunner(settings, broker, **kwargs)  # type: ignore[arg-type]

    async def run_job(job: RunJob) -> None:
        await runner.run(job.name, job.now)

    RUN_JOB.declare(broker, run_job, min_backoff=1_000, max_backoff=30_000)
    return runner
