"""Sliding windows, in-flight caps and bans, on a fake monotonic clock."""

from __future__ import annotations

from contextlib import ExitStack

from etl.emulators.limits import Limiter, Rate


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def verdicts(limiter: Limiter, bucket: str, rates: list[Rate], n: int) -> list[bool]:
    out = []
    for _ in range(n):
        with limiter.admit(bucket, rates) as v:
            out.append(v.ok)
    return out


def test_sliding_window_refuses_the_sixth_in_a_second() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    five = [Rate(5, 1.0)]
    assert verdicts(limiter, "u", five, 6) == [True] * 5 + [False]
    clock.t += 0.999  # still inside the window of the first five
    assert verdicts(limiter, "u", five, 1) == [False]
    clock.t += 0.001  # exactly one second later the first five slide out
    assert verdicts(limiter, "u", five, 5) == [True] * 5
    assert verdicts(limiter, "other", five, 1) == [True]  # buckets are separate


def test_refused_requests_count_only_when_the_rate_says_so() -> None:
    clock = Clock()
    lenient, strict = Limiter(clock), Limiter(clock)
    assert verdicts(lenient, "k", [Rate(2, 1.0)], 2) == [True, True]
    assert verdicts(strict, "k", [Rate(2, 1.0, count_refused=True)], 2) == [True, True]
    clock.t += 0.6
    assert verdicts(lenient, "k", [Rate(2, 1.0)], 1) == [False]  # refused at 0.6, not counted
    assert verdicts(strict, "k", [Rate(2, 1.0, count_refused=True)], 1) == [False]  # counted
    clock.t += 0.5  # 1.1 s: the first two left; the refused one at 0.6 is still in "strict"
    assert verdicts(lenient, "k", [Rate(2, 1.0)], 2) == [True, True]
    assert verdicts(strict, "k", [Rate(2, 1.0, count_refused=True)], 2) == [True, False]


def test_several_windows_apply_together() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    rates = [Rate(2, 1.0), Rate(3, 60.0)]  # Infoway-like: per second and per minute
    assert verdicts(limiter, "k", rates, 2) == [True, True]
    clock.t += 1.0
    assert verdicts(limiter, "k", rates, 2) == [True, False]  # the minute window is full


def test_in_flight_cap_holds_until_the_answer_is_written() -> None:
    limiter = Limiter(Clock())
    with ExitStack() as stack:
        held = [stack.enter_context(limiter.admit("u", (), in_flight=2)).ok for _ in range(3)]
        assert held == [True, True, False]
    with limiter.admit("u", (), in_flight=2) as v:  # both released
        assert v.ok


def test_a_ban_refuses_everything_and_is_not_extended() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    rate = [Rate(5, 1.0, ban=10.0)]  # mdapi: over the limit bans the bucket for 10 s
    assert verdicts(limiter, "redis:btcusdt", rate, 6)[-1] is False
    for _ in range(9):
        clock.t += 1.0  # a request every second during the ban
        with limiter.admit("redis:btcusdt", rate) as v:
            assert (v.ok, v.reason) == (False, "banned")
    clock.t += 1.0  # 10 s after the refusal: over, despite the requests in between
    assert verdicts(limiter, "redis:btcusdt", rate, 1) == [True]
    limiter.ban("quote:x", 2.0)  # an injected burst bans directly
    assert verdicts(limiter, "quote:x", [], 1) == [False]
    clock.t += 2.0
    assert verdicts(limiter, "quote:x", [], 1) == [True]


def test_reset_forgets_windows_and_bans() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    verdicts(limiter, "u", [Rate(1, 1.0, ban=5.0)], 2)
    limiter.reset()
    assert verdicts(limiter, "u", [Rate(1, 1.0, ban=5.0)], 1) == [True]
