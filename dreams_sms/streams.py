"""A sender's streams as one consumer sees them: read, take over, keep fresh.

High-priority and normal entries come in one XREADGROUP; entries a dead
consumer held are taken over with XAUTOCLAIM (looked for every few seconds);
entries we hold are kept fresh with XCLAIM while we retry, so nobody else takes
them over from a live worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis

from .config import Settings
from .jobs import Job
from .keys import GROUP, Keys, ensure_group

log = logging.getLogger("dreams_sms.drain")


class SenderStreams:
    def __init__(self, r: redis.Redis, settings: Settings, consumer: str, *,
                 sleep: Callable[[float], None] = time.sleep):
        self.r = r
        self.s = settings
        self.keys = Keys(settings.prefix)
        self.consumer = consumer
        self.sleep = sleep
        self._groups: set[str] = set()
        self._claim_due: dict[str, float] = {}

    def ensure_group(self, stream: str) -> None:
        ensure_group(self.r, stream, self._groups)

    def _xread(self, streams: Sequence[str], count: int
               ) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
        """One XREADGROUP over several streams (up to `count` from each)."""
        for stream in streams:
            self.ensure_group(stream)
        wanted = dict.fromkeys(streams, ">")
        try:
            return self.r.xreadgroup(GROUP, self.consumer, wanted, count=count) or []
        except redis.ResponseError as exc:  # the group vanished (Redis lost its data)
            if "NOGROUP" not in str(exc):
                raise
            for stream in streams:
                self._groups.discard(stream)
                self.ensure_group(stream)
            return self.r.xreadgroup(GROUP, self.consumer, wanted, count=count) or []

    def read(self, sender: str, want: int) -> list[Job]:
        """High priority first, then normal, in one round trip; wait briefly
        for a fuller batch. With both streams busy this may return up to
        2 x `want` jobs: `_process` reserves quota for the surplus or gives
        it back."""
        jobs: list[Job | None] = []
        high_stream, normal_stream = self.keys.streams(sender)
        deadline = time.monotonic() + self.s.batch_wait
        while True:
            for stream, entries in self._xread((high_stream, normal_stream), want - len(jobs)):
                high = stream == high_stream
                jobs += (self._job(fields, sender, entry, high, stream)
                         for entry, fields in entries)
            if len(jobs) >= want or not jobs or time.monotonic() >= deadline:
                found = [j for j in jobs if j is not None]
                found.sort(key=lambda j: not j.high)  # high priority first
                return found
            self.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _job(self, fields: dict | None, sender: str, entry: str, high: bool,
             stream: str) -> Job | None:
        try:
            return Job.from_fields(fields or {}, sender=sender, entry=entry, high=high)
        except (KeyError, ValueError):
            log.error("dropping malformed stream entry %s in %s", entry, stream)
            self.r.xack(stream, GROUP, entry)
            self.r.xdel(stream, entry)
            return None

    def claim(self, sender: str) -> list[Job]:
        """Entries a dead consumer held (idle past claim_idle) become ours.

        Looked for every few seconds, not every batch: nothing can be
        claimable sooner than `claim_idle` after its consumer went silent.
        """
        due = self._claim_due.get(sender, 0.0)
        if time.monotonic() < due:
            return []
        self._claim_due[sender] = time.monotonic() + min(self.s.claim_idle / 3, 5.0)
        jobs: list[Job] = []
        idle = int(self.s.claim_idle * 1000)
        for high in (True, False):
            stream = self.keys.stream(sender, high)
            self.ensure_group(stream)
            try:
                _, entries, deleted = self.r.xautoclaim(
                    stream, GROUP, self.consumer, min_idle_time=idle, start_id="0-0",
                    count=self.s.batch_size - len(jobs))
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._groups.discard(stream)
                continue
            for gone in deleted or []:
                self.r.xack(stream, GROUP, gone)
            for entry, fields in entries:
                if fields is None:
                    self.r.xack(stream, GROUP, entry)
                    continue
                job = self._job(fields, sender, entry, high, stream)
                if job is not None:
                    jobs.append(job)
            if len(jobs) >= self.s.batch_size:
                break
        if jobs:
            self._claim_due[sender] = 0.0  # there may be more: look again next batch
            log.warning("recovered %d jobs of sender %s from a dead consumer", len(jobs), sender)
        return jobs

    def touch(self, jobs: Sequence[Job]) -> None:
        """Reset the idle time of entries we hold, so nobody claims them while we work."""
        by_stream: dict[str, list[str]] = {}
        for job in jobs:
            if job.entry:
                by_stream.setdefault(self.keys.stream(job.sender, job.high), []).append(job.entry)
        for stream, ids in by_stream.items():
            self.r.xclaim(stream, GROUP, self.consumer, 0, ids, justid=True)
