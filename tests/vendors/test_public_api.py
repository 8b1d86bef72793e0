"""The shared vendor layer's public surface: each module's ``__all__``, guarded."""

from __future__ import annotations


def test_public_surface() -> None:
    from etl.vendors import governor, http, limits, redact

    assert set(redact.__all__) == {
        "MASK", "MIN_SECRET_LEN", "SECRET_PARAMS", "RedactingFilter", "is_secret_name",
        "redact_text", "redact_tree", "redact_url",
    }  # fmt: skip
    assert set(limits.__all__) == {"ALL", "Limit", "kind_of", "limits_for", "rate_windows"}
    assert set(governor.__all__) == {
        "LANE", "Governor", "Lane", "Lease", "Limit", "limits_for", "rate_windows"
    }  # fmt: skip
    assert set(http.__all__) == {
        "RetryPolicy", "SessionExpired", "Tally", "VendorHttp", "timeouts_from"
    }  # fmt: skip
    for module in (redact, limits, governor, http):
        assert all(hasattr(module, name) for name in module.__all__)
