"""Micro-batching: concurrent requests share one model call.

Requests wait in a bounded queue. A single worker takes the first waiting request, gathers more for at most
``max_wait_ms`` (or until ``max_batch`` are in hand), runs them as one list through the Transcriber in a
worker thread (off the event loop), and hands every caller its own result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


class QueueFullError(Exception):
    """The request queue is at capacity; the caller should retry later (HTTP 503)."""


@dataclass
class _Job:
    audio: np.ndarray
    future: asyncio.Future
    enqueued: float


class MicroBatcher:
    """Collects requests into batches and runs them with ``run_batch`` in a thread.

    Args:
        run_batch: called with a list of float32 arrays; returns one result per array, or raises.
        max_batch: most requests per model call.
        max_wait_ms: longest a first request waits for company before its batch runs.
        queue_size: most requests waiting; beyond it :meth:`submit` raises :class:`QueueFullError`.
    """

    def __init__(self, run_batch: Callable[[Sequence[np.ndarray]], list[Any]], *, max_batch: int = 8,
                 max_wait_ms: float = 10.0, queue_size: int = 64) -> None:
        if max_batch < 1 or queue_size < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and queue_size must be >= 1 and max_wait_ms >= 0")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self._worker: asyncio.Task | None = None
        self.batches_run = 0
        self.items_run = 0

    def start(self) -> None:
        """Start the worker task on the running event loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="w2v2-onnx-batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still queued are failed with a clear error."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        while not self.queue.empty():
            job = self.queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(RuntimeError("server is shutting down"))

    async def submit(self, audio: np.ndarray) -> Any:
        """Queue one input and wait for its result.

        Raises:
            QueueFullError: the queue is full.
        """
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait(_Job(audio, future, time.monotonic()))
        except asyncio.QueueFull:
            raise QueueFullError(f"request queue is full ({self.queue.maxsize} waiting); retry later") from None
        return await future

    async def _gather(self) -> list[_Job]:
        first = await self.queue.get()
        jobs = [first]
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while len(jobs) < self.max_batch:
            timeout = deadline - asyncio.get_running_loop().time()
            if timeout <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self.queue.get(), timeout))
            except TimeoutError:
                break
        # a caller that timed out (cancelled future) no longer needs its work done
        return [job for job in jobs if not job.future.done()]

    async def _work(self) -> None:
        while True:
            jobs = await self._gather()
            if not jobs:
                continue
            try:
                results = await asyncio.to_thread(self.run_batch, [job.audio for job in jobs])
            except Exception as exc:  # handed to each caller; the worker itself must survive
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self.batches_run += 1
            self.items_run += len(jobs)
            for job, result in zip(jobs, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)
