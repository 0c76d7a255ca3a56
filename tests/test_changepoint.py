"""E-Divisive means on hand-computed and synthetic series."""

from __future__ import annotations

import numpy as np
import pytest

from sandbench.analysis.changepoint import change_points, q_values


def test_q_values_by_hand() -> None:
    # [0 0 0 | 1 1 1]: every cross pair differs by 1, no within pair does:
    # E = 2 * 9/9 - 0 - 0 = 2, Q = 3*3/6 * 2 = 3.
    # [0 0 | 0 1 1 1]: cross 6/8 pairs differ, 3 of Y's 6 pairs do:
    # E = 2 * 6/8 - 0 - 3/6 = 1, Q = 2*4/6 * 1 = 4/3; the split at 4 mirrors it.
    q = q_values([0, 0, 0, 1, 1, 1], min_size=2)
    assert q[3] == pytest.approx(3.0)
    assert q[2] == pytest.approx(4 / 3) and q[4] == pytest.approx(4 / 3)
    assert np.isnan(q[0]) and np.isnan(q[1]) and np.isnan(q[5]) and np.isnan(q[6])


def _q(x: np.ndarray, y: np.ndarray) -> float:
    m, n = len(x), len(y)
    between = np.abs(x[:, None] - y[None, :]).sum() * 2 / (m * n)
    within_x = np.abs(x[:, None] - x[None, :]).sum() / 2 / (m * (m - 1) / 2)
    within_y = np.abs(y[:, None] - y[None, :]).sum() / 2 / (n * (n - 1) / 2)
    return float(m * n / (m + n) * (between - within_x - within_y))


def test_q_values_match_the_definition_on_random_data() -> None:
    # Q(tau) is the best over the end kappa of Y, as Matteson and James search it.
    values = np.random.default_rng(7).normal(size=12)
    q = q_values(values, min_size=2)
    for tau in range(2, 11):
        best = max(_q(values[:tau], values[tau:kappa]) for kappa in range(tau + 2, 13))
        assert q[tau] == pytest.approx(best)


def test_a_step_is_found_where_it_is() -> None:
    rng = np.random.default_rng(5)
    series = np.r_[rng.normal(100, 2, 20), rng.normal(110, 2, 20)]
    (found,) = change_points(series)
    assert found.index == 20
    assert found.relative_change == pytest.approx(0.10, abs=0.02)
    assert found.p_value <= 0.01


def test_two_steps_are_both_found() -> None:
    rng = np.random.default_rng(6)
    series = np.r_[rng.normal(100, 2, 15), rng.normal(115, 2, 15), rng.normal(100, 2, 15)]
    assert [c.index for c in change_points(series)] == [15, 30]


def test_a_slow_drift_shows_though_no_night_jumps() -> None:
    # 0.5% a night under 2% noise: no single night moves past a 10% threshold.
    rng = np.random.default_rng(8)
    series = 100 * 1.005 ** np.arange(30) * rng.normal(1, 0.02, 30)
    assert np.max(np.abs(np.diff(series) / series[:-1])) < 0.10
    found = change_points(series)
    assert found and all(c.after > c.before for c in found)


def test_noise_alone_has_few_false_change_points() -> None:
    false = sum(bool(change_points(np.random.default_rng(100 + i).normal(100, 3, 30), seed=i))
                for i in range(40))
    # alpha is 1%: about 0.4 expected in 40 series.
    assert false <= 3


def test_short_flat_or_unusable_series_have_none() -> None:
    assert change_points([1.0, 2.0, 3.0]) == []
    assert change_points([5.0] * 20) == []
    assert change_points([1.0, float("nan")] * 10) == []


def test_a_change_at_the_edge_needs_min_size_points_after_it() -> None:
    series = [100.0] * 20 + [150.0, 150.0]
    assert change_points(series) == []
    assert [c.index for c in change_points([*series, 150.0])] == [20]
