"""The rate governor: windows, in-flight caps, buckets and bans, within one process and
across real processes sharing a state directory (small windows keep the tests short)."""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl.vendors.base import RateLimits
from etl.vendors.governor import LANE, Governor, Lane, Limit, limits_for, rate_windows

WORKER = Path(__file__).with_name("_governor_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def max_in_window(times: list[float], seconds: float) -> int:
    """The most starts inside any half-open window of ``seconds`` (arrival-time counting)."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - seconds:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def sustained_rate(times: list[float], burst: int) -> float:
    """Requests per second the window lets through while demand exceeds it: ``burst`` over
    the typical time between a start and the one ``burst`` later (the median, so that one
    scheduling stall of a loaded machine does not decide the figure)."""
    times = sorted(times)
    return burst / statistics.median(b - a for a, b in zip(times, times[burst:], strict=False))


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "file"])
def test_limits_hold_under_concurrency(shared: bool, tmp_path: Path) -> None:
    gov = Governor(
        "t",
        [Limit(requests=5, seconds=0.5), Limit(in_flight=2)],
        state_dir=tmp_path if shared else None,
    )
    starts: list[float] = []
    open_now, most_open = 0, 0

    async def one() -> None:
        nonlocal open_now, most_open
        async with gov.slot() as lease:
            starts.append(lease.started)
            open_now += 1
            most_open = max(most_open, open_now)
            await asyncio.sleep(0.01)  # the answer takes 10 ms
            open_now -= 1

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(20)))

    asyncio.run(main())
    assert len(starts) == 20
    assert most_open == 2
    assert max_in_window(starts, 0.5) <= 5
    # 10/s allowed; the 2 % margin, the 10 ms answers and scheduling leave > 90 % of it.
    assert sustained_rate(starts, 5) >= 9.0


def test_buckets_and_kinds_are_counted_apart() -> None:
    gov = Governor(
        "t",
        [
            Limit(requests=2, seconds=0.3, kind="kline", per_bucket=True),
            Limit(requests=1, seconds=0.3, kind="list"),
        ],
    )

    async def main() -> dict[str, list[float]]:
        waited: dict[str, list[float]] = {}
        for bucket in ("kline:a", "kline:a", "kline:b", "kline:b", "list", "other", "kline:a"):
            async with gov.slot(bucket) as lease:  # answered at once
                waited.setdefault(bucket, []).append(lease.waited)
        async with gov.slot("list") as lease:
            waited["list"].append(lease.waited)
        return waited

    waited = asyncio.run(main())
    # Two per product code, so a and b each start twice at once; the third on a waits.
    assert max(waited["kline:a"][:2] + waited["kline:b"]) < 0.05
    assert waited["kline:a"][2] >= 0.25
    # The list endpoints share one count; a bucket no limit names is never held.
    assert waited["list"][0] < 0.05 and waited["other"] == [pytest.approx(0, abs=0.05)]
    assert waited["list"][1] > 0.0  # the second list call waited what was left of its window


def test_a_request_counts_until_a_window_after_its_answer() -> None:
    # The vendor stamps a request somewhere between our send and its answer, so a slow
    # answer pushes the window: the next start comes a full window after the answer.
    gov = Governor("t", [Limit(requests=1, seconds=0.2)])

    async def main() -> tuple[float, float, float]:
        async with gov.slot() as first:
            await asyncio.sleep(0.3)  # in flight for 0.3 s
        answered = time.time()
        async with gov.slot() as second:
            pass
        return first.started, answered, second.started

    first, answered, second = asyncio.run(main())
    assert second - answered >= 0.2 and second - first >= 0.5


def test_ban_covers_bucket_kind_and_vendor() -> None:
    gov = Governor("t", [Limit(requests=100, seconds=1.0)])

    async def wait_of(bucket: str | None) -> float:
        return (await gov.acquire(bucket)).waited

    gov.ban("kline:a", 0.3)
    assert 0.25 < gov.banned_for("kline:a") <= 0.3 and gov.banned_for("kline:b") == 0
    assert asyncio.run(wait_of("kline:b")) < 0.05
    assert asyncio.run(wait_of("kline:a")) >= 0.25
    gov.ban("kline", 0.2)  # a kind: every bucket of it
    assert asyncio.run(wait_of("kline:z")) >= 0.15
    gov.ban(None, 0.2)  # the whole vendor
    assert asyncio.run(wait_of("quote:q")) >= 0.15
    gov.ban("kline:a", 0.5)
    gov.ban("kline:a", 0.1)  # a shorter ban never shortens a longer one
    assert gov.banned_for("kline:a") > 0.4


def test_update_limits_wakes_waiters() -> None:
    gov = Governor("t", [Limit(requests=1, seconds=30.0)])

    async def main() -> float:
        await gov.acquire()
        waiter = asyncio.create_task(gov.acquire())
        await asyncio.sleep(0.1)
        assert not waiter.done()
        gov.update(rate_windows(5.0))  # e.g. the plan's rate read from the vendor
        return (await asyncio.wait_for(waiter, 2.0)).waited

    assert asyncio.run(main()) < 1.0


def test_limit_construction() -> None:
    # rate -> window: whole requests per second, or one per 1/rate s
    assert rate_windows(5.0) == (Limit(requests=5, seconds=1.0),)
    assert rate_windows(4.5) == (Limit(requests=4, seconds=1.0),)
    assert rate_windows(0.5) == (Limit(requests=1, seconds=2.0),)
    # Infoway Premium: 10/s and 600/min; ETL_INFOWAY_RATE=5 keeps the ratio (300/min)
    plan = RateLimits(per_second=10, per_minute=600)
    assert limits_for(plan, 5.0) == (Limit(5, 1.0), Limit(300, 60.0))
    # AmazingData: 5/s and 2 in flight, per key
    assert limits_for(RateLimits(per_second=5, in_flight=2)) == (Limit(5), Limit(in_flight=2))
    # per product: each bucket counted on its own
    assert limits_for(RateLimits(per_second=5, scope="product"))[0].per_bucket
    with pytest.raises(ValueError, match="either"):
        Limit(requests=1, in_flight=1)
    with pytest.raises(ValueError):
        Limit(requests=0)
    with pytest.raises(ValueError):
        Governor("../evil", [])


def test_unreadable_state_starts_afresh(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "t.json").write_text("{not json")
    gov = Governor("t", [Limit(requests=1, seconds=5.0)], state_dir=tmp_path)
    assert asyncio.run(gov.acquire()).waited < 0.05
    state = json.loads((tmp_path / "t.json").read_text())
    assert list(state["starts"]) == ["*@5.0"]


def _worker(*args: str, pipe: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE if pipe else subprocess.DEVNULL,
        text=True,
    )


def test_two_processes_share_the_limits(tmp_path: Path) -> None:
    start_at = time.time() + 1.5  # both are importing by then
    procs = [
        _worker("run", str(tmp_path), str(tmp_path / f"starts{i}.txt"), "15", repr(start_at))
        for i in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=30) == 0
    per_proc = [
        [float(x) for x in (tmp_path / f"starts{i}.txt").read_text().split()] for i in range(2)
    ]
    starts = per_proc[0] + per_proc[1]
    assert len(starts) == 30 and all(len(p) == 15 for p in per_proc)
    # The two interleave rather than run one after the other...
    assert min(per_proc[1]) < max(per_proc[0]) and min(per_proc[0]) < max(per_proc[1])
    # ...and together never exceed 5 starts in any 0.5 s, while using > 90 % of 10/s.
    assert max_in_window(starts, 0.5) <= 5
    assert sustained_rate(starts, 5) >= 9.0


def test_ban_from_another_process(tmp_path: Path) -> None:
    assert _worker("ban", str(tmp_path), "kline:x", "0.8").wait(timeout=30) == 0
    gov = Governor("shared", [Limit(requests=5, seconds=0.5)], state_dir=tmp_path)
    left = gov.banned_for("kline:x")
    assert 0 < left <= 0.8
    assert asyncio.run(gov.acquire("kline:y")).waited < 0.05
    assert asyncio.run(gov.acquire("kline:x")).waited >= left - 0.05


def test_sigkilled_holder_does_not_leak_its_lease(tmp_path: Path) -> None:
    holder = _worker("hold", str(tmp_path), pipe=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        gov = Governor("shared", [Limit(in_flight=1)], state_dir=tmp_path, lease_ttl=600)

        async def take(timeout: float) -> float:
            lease = await asyncio.wait_for(gov.acquire(), timeout)
            gov.release(lease)
            return lease.waited

        with pytest.raises(TimeoutError):  # the live holder keeps the only slot
            asyncio.run(take(0.3))
        holder.send_signal(signal.SIGKILL)
        # Not reaped yet (a zombie): still counted dead, so the lease is reclaimed at once,
        # long before its 600 s expiry.
        assert asyncio.run(take(2.0)) < 0.5
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_killed_request_frees_its_window_for_good(tmp_path: Path) -> None:
    # Regression: a request whose process was SIGKILLed before its answer had its end
    # re-stamped "now" on every read (the pruned state was not saved while others waited),
    # so a 1-per-second window stayed shut forever and a resumed fill hung.
    holder = _worker("hold-rate", str(tmp_path), pipe=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        gov = Governor("shared", [Limit(requests=1, seconds=1.0)], state_dir=tmp_path)

        async def take() -> float:
            lease = await asyncio.wait_for(gov.acquire(), 5.0)
            gov.release(lease)
            return lease.waited

        assert asyncio.run(take()) < 2.0  # one window after its death, at most
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


class _Clock:
    """A wall clock the test moves by hand (the governor's only clock)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _timed(gov: Governor, clock: _Clock, latency: float, *, times: int = 3) -> None:
    """``times`` requests, each ``latency`` seconds from its grant to its answer."""

    async def one() -> None:
        lease = await gov.acquire()
        clock.now += latency
        gov.release(lease)

    for _ in range(times):
        asyncio.run(one())


def test_pace_keeps_the_rate_busy_and_no_more() -> None:
    """Little's law: rate × time per request × 1.25, within [1, cap]; 1 before any timing.
    Loopback (5 ms a call at 10/s) runs one at a time; 300 ms away, four."""
    clock = _Clock()
    gov = Governor("t", [*rate_windows(10.0), Limit(in_flight=4)], clock=clock)
    assert gov.pace(8) == 1  # nothing timed yet
    _timed(gov, clock, 0.005)
    assert gov.pace(8) == 1
    cold = Governor("t", rate_windows(10.0), clock=clock)
    _timed(cold, clock, 0.6, times=1)
    _timed(cold, clock, 0.005, times=2)
    assert cold.pace(8) == 1  # one slow first answer does not open the run wide
    far = Governor("t", [*rate_windows(10.0), Limit(in_flight=4)], clock=clock)
    _timed(far, clock, 0.3)
    assert far.pace(8) == 4  # ceil(10 × 0.3 × 1.25) = 4, the in-flight cap too
    assert far.pace(2) == 2  # the caller's cap
    slow = Governor("t", rate_windows(10.0), clock=clock)
    _timed(slow, clock, 2.0)
    assert slow.pace(8) == 8  # 25 wanted: capped
    # a vendor limited per product only (mdapi) has no rate over all requests: the cap
    mdapi = Governor("t", rate_windows(5.0, kind="kline", per_bucket=True), clock=clock)
    assert mdapi.pace(3) == 3


def test_a_lanes_own_time_between_requests_counts_in_its_turn() -> None:
    """What a lane does between its answer and its next request (validating, waiting for a
    commit) is part of a request's cost; a pause (waiting for its turn to run) is not."""
    clock = _Clock()
    gov = Governor("t", rate_windows(10.0), clock=clock)

    async def lane_requests(gap: float, *, pause: bool) -> None:
        lane = Lane()
        LANE.set(lane)
        lease = await gov.acquire()
        clock.now += 0.01
        gov.release(lease)
        clock.now += gap  # the lane's own work, or a wait that is not a request's cost
        if pause:
            lane.pause()
        lease = await gov.acquire()
        clock.now += 0.01
        gov.release(lease)

    asyncio.run(lane_requests(0.5, pause=True))
    asyncio.run(lane_requests(0.5, pause=True))
    assert gov.pace(8) == 1  # 10 ms turns: the 0.5 s pauses did not count
    asyncio.run(lane_requests(0.5, pause=False))
    asyncio.run(lane_requests(0.5, pause=False))
    asyncio.run(lane_requests(0.5, pause=False))
    # 3 of the last 8 turns took 0.51 s, 5 took 10 ms: the median is 10 ms
    assert gov.pace(8) == 1
    asyncio.run(lane_requests(0.5, pause=False))
    assert gov.pace(8) == 4  # 4 of the last 8 at 0.51 s: median 0.26 s, ⌈10 × 0.26 × 1.25⌉
