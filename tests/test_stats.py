"""Intervals and paired tests, on small cases computed by hand."""

import pytest

from lidr.stats import binomial_two_sided, fmt_paired, mean_interval, paired_shares, share, wilson


def test_paired_difference_and_interval_by_hand():
    base = [True, True, False, False, False, True, False, False, False, False]
    new = [True, False, True, True, True, True, False, True, False, False]
    out = paired_shares(base, new)
    # gained: items 2, 3, 4, 7; lost: item 1; n = 10
    assert (out["n"], out["gained"], out["lost"]) == (10, 4, 1)
    assert (out["base"], out["new"], out["diff"]) == (0.3, 0.6, 0.3)
    # Agresti-Min: b = 4.5, c = 1.5, m = 12 -> d = 0.25, se = sqrt(6 - 9/12) / 12 = 0.190941
    assert out["ci95"] == [pytest.approx(-0.1242, abs=1e-4), pytest.approx(0.6242, abs=1e-4)]
    # exact McNemar: 4 of 5 discordant items, p = 2 * (1 + 5) / 32
    assert out["p_mcnemar"] == 0.375
    assert fmt_paired(out) == "+0.30 [-0.12, +0.62] p=0.375 (+4/-1)"


def test_paired_interval_is_never_empty_and_needs_the_same_items():
    out = paired_shares([True] * 5, [True] * 5)
    assert out["diff"] == 0.0 and out["ci95"][0] < 0 < out["ci95"][1] and out["p_mcnemar"] == 1.0
    with pytest.raises(ValueError, match="same items"):
        paired_shares([True], [True, False])


def test_wilson_interval_by_hand():
    lo, hi = wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert wilson(0, 0) is None
    assert share(0, 4) == {"k": 0, "n": 4, "share": 0.0, "ci95": [0.0, 0.4899]}


def test_sign_test_and_mean_interval():
    assert binomial_two_sided(0, 5) == pytest.approx(2 / 32)
    assert binomial_two_sided(3, 6) == 1.0
    assert binomial_two_sided(0, 0) == 1.0
    # mean 2, sd 1 (values 1, 2, 3), half-width 1.96 / sqrt(3)
    assert mean_interval([1.0, 2.0, 3.0]) == {"n": 3, "mean": 2.0, "ci95": [0.8684, 3.1316]}
    assert mean_interval([]) == {"n": 0, "mean": None, "ci95": None}
