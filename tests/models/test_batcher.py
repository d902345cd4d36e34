"""The micro-batcher: concurrent callers share calls, each gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from models.batcher import MicroBatcher


async def test_concurrent_callers_share_batches_and_get_their_own_results() -> None:
    calls: list[list[int]] = []

    def square(items: list[int]) -> list[int]:
        calls.append(items)
        return [i * i for i in items]

    batcher = MicroBatcher(square, max_batch=16)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(40)))
    batcher.close()
    assert results == [i * i for i in range(40)]
    assert len(calls) < 40 and max(map(len, calls)) <= 16


async def test_a_failing_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    def fragile(items: list[int]) -> list[int]:
        if 0 in items:
            raise ValueError("boom")
        return items

    batcher = MicroBatcher(fragile)
    with pytest.raises(ValueError, match="boom"):
        await batcher.submit(0)
    assert await batcher.submit(5) == 5
    batcher.close()


def test_sub_batches_cover_every_text_in_order() -> None:
    from models.encoder import MAX_ROWS, sub_batch_ends

    lengths = sorted([3, 3, 4, 5, 9, 9, 10, 40, 41, 120] * 20)
    ends = sub_batch_ends(lengths)
    assert ends[-1] == len(lengths) and ends == sorted(set(ends))
    assert all(b - a <= MAX_ROWS for a, b in zip([0, *ends], ends, strict=False))
    assert sub_batch_ends([]) == []
