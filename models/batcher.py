"""Micro-batching: concurrent callers share one forward pass, run off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Collects items submitted concurrently and runs them through `fn` in batches.

    The first waiting item starts a batch; every item that arrives while the
    previous batch runs joins the next one, up to `max_batch`. No timer: under
    light load a lone call runs at once, under heavy load batches fill up.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], max_batch: int = 64) -> None:
        self._fn = fn
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._running = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="baton-model")

    async def submit(self, item: T) -> R:
        """Queue one item and wait for its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                items = [item for item, _ in batch]
                try:
                    results = await loop.run_in_executor(self._executor, self._fn, items)
                except Exception as exc:  # every waiter of a failed batch gets the error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running = False

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)
