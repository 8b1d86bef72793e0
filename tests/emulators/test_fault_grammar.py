"""The ``--faults`` grammar: every WHEN form, variants, vendor extensions and the errors."""

from __future__ import annotations

import pytest

from etl.emulators.amazingdata import AmazingDataEmulator
from etl.emulators.faults import (
    SHARED_FAULTS,
    FaultDef,
    FaultPlan,
    FaultSpecError,
    When,
    catalogue,
    parse_faults,
)


def selected(spec: str, requests: int = 8, seed: int = 0) -> list[int]:
    """Request numbers (1-based) on which the single fault of ``spec`` is on."""
    plan = FaultPlan(parse_faults(spec), seed)
    return [n for n in range(1, requests + 1) if plan.draw(n, lambda f: True).faults]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("http_500", [1, 2, 3, 4, 5, 6, 7, 8]),  # no WHEN: every request
        ("http_500@3", [3]),  # N: the Nth only
        ("http_500@1", [1]),  # 1-based
        ("http_500@3-5", [3, 4, 5]),  # N-M: inclusive range
        ("http_500@4-4", [4]),  # a range of one
        ("http_500@6+", [6, 7, 8]),  # N+: from N on
        ("http_500@p0", []),  # probability 0: never
        ("http_500@p1", [1, 2, 3, 4, 5, 6, 7, 8]),  # probability 1: always
        ("http_500@20", []),  # beyond the requests made: never
    ],
)
def test_when_forms(spec: str, expected: list[int]) -> None:
    assert selected(spec) == expected


def test_probability_is_deterministic_per_seed_and_near_its_rate() -> None:
    first = selected("http_500@p0.3", requests=2000, seed=7)
    assert first == selected("http_500@p0.3", requests=2000, seed=7)  # same seed: same run
    assert first != selected("http_500@p0.3", requests=2000, seed=8)  # another seed differs
    assert 500 < len(first) < 700  # about 30 % of 2000


@pytest.mark.parametrize(
    ("spec", "name", "variant", "when"),
    [
        ("timeout", "timeout", "60", When()),  # timeout defaults to 60 s
        ("timeout:2.5@2", "timeout", "2.5", When(2, 2)),  # a numeric variant
        ("bad_prices", "bad_prices", None, When()),  # None = all three kinds
        ("bad_prices:nan@p0.1", "bad_prices", "nan", When(probability=0.1)),
        ("schema_drift", "schema_drift", "extra", When()),  # our default: the harmless one
        ("schema_drift:rename@3+", "schema_drift", "rename", When(3, None)),
        ("duplicate_bars:conflict", "duplicate_bars", "conflict", When()),
        ("out_of_order_bars:reversed@1-2", "out_of_order_bars", "reversed", When(1, 2)),
    ],
)
def test_variants_and_defaults(spec: str, name: str, variant: str | None, when: When) -> None:
    (fault,) = parse_faults(spec)
    assert (fault.name, fault.variant, fault.when) == (name, variant, when)


def test_a_list_keeps_its_order_and_whitespace_is_tolerated() -> None:
    faults = parse_faults(" rate_limit_burst@3-5 , bad_prices:nan@p0.1,http_500 ")
    assert [f.text() for f in faults] == ["rate_limit_burst@3-5", "bad_prices:nan@p0.1", "http_500"]
    assert [f.index for f in faults] == [0, 1, 2]
    assert parse_faults("") == () and parse_faults("  ") == ()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown fault 'nope': valid: auth_expired, bad_prices"),  # lists the names
        (
            "bad_prices:foo",
            "unknown variant 'foo' of bad_prices in 'bad_prices:foo': valid: "
            "high_low, negative, nan",
        ),  # lists the variants
        ("http_500:x", "unknown variant 'x' of http_500 in 'http_500:x': valid: none"),
        ("auth_expired:login", "unknown variant 'login' of auth_expired"),  # AmazingData only
        ("http_500@0", "bad WHEN '0' in 'http_500@0'"),  # 1-based
        ("http_500@5-3", "bad WHEN '5-3'"),  # empty range
        ("http_500@3-", "bad WHEN '3-'"),
        ("http_500@p1.5", "bad WHEN 'p1.5'"),  # a probability above 1
        ("http_500@px", "bad WHEN 'px'"),
        ("http_500@", "bad fault 'http_500@'"),
        ("http_500,,timeout", "bad fault ''"),  # an empty item
        ("timeout:0", "timeout takes a number of seconds > 0, got '0'"),
        ("timeout:abc", "timeout takes a number of seconds > 0, got 'abc'"),
        ("HTTP_500", "bad fault 'HTTP_500'"),  # names are lower case
    ],
)
def test_errors_name_the_valid_choices(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_faults(spec)
    assert message in str(info.value)
    assert info.value.exit_code == 2  # a BadInputError: the CLI exits 2 before binding


def test_vendor_tables_extend_the_shared_one() -> None:
    (fault,) = parse_faults("auth_expired:login@2+", AmazingDataEmulator.fault_table)
    assert (fault.name, fault.variant, fault.when) == ("auth_expired", "login", When(2, None))
    table = catalogue(
        variants={"rate_limit_burst": ("detail200", "ret501")},
        faults=[FaultDef("ip_refused", "decide", "any")],
    )
    names = [f.text() for f in parse_faults("rate_limit_burst:ret501,ip_refused@2", table)]
    assert names == ["rate_limit_burst:ret501", "ip_refused@2"]
    assert "ip_refused" not in SHARED_FAULTS  # the shared table is left alone


def test_when_counts_only_the_requests_a_fault_applies_to() -> None:
    plan = FaultPlan(parse_faults("duplicate_bars@2,http_500@2"))
    kline = [True, False, True, True]  # requests 1..4: kline, other, kline, kline
    on = [
        [f.name for f in plan.draw(n, lambda f, k=k: k or f.scope == "any").faults]
        for n, k in enumerate(kline, start=1)
    ]
    # duplicate_bars counts kline answers (its 2nd is request 3); http_500 counts all.
    assert on == [[], ["http_500"], ["duplicate_bars"], []]


def test_the_first_deciding_fault_wins_and_modifiers_combine() -> None:
    plan = FaultPlan(parse_faults("duplicate_bars,rate_limit_burst,http_500,missing_bars"))
    active = plan.draw(1, lambda f: True)
    assert active.winner() is not None and active.winner().name == "rate_limit_burst"  # type: ignore[union-attr]
    assert [f.name for f in active.modifiers()] == ["duplicate_bars", "missing_bars"]
    plan.reset()
    assert (
        FaultPlan(parse_faults("timeout:1,http_500")).draw(1, lambda f: True).winner().name
        == "timeout"
    )  # type: ignore[union-attr]
