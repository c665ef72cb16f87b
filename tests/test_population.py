"""Tests of the population generator (docs/model.md section 2).

Exact properties (segment counts, the peeling order, reproducibility) are asserted
exactly; distributional ones at n = 50 000 with fixed seeds, each tolerance stated in
standard errors.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from scipy import stats

from simulator.book import Book
from simulator.population import _counts, _lowest, assign_segments, generate_book
from simulator.rng import Streams
from simulator.scenario import CHANNELS, PRODUCTS, SEGMENTS, Scenario, scenario_from_dict

N = 50_000


def _scenario(size: int = N, **population: Any) -> Scenario:
    return scenario_from_dict({"population": {"size": size, **population}})


@pytest.fixture(scope="module")
def default_scenario() -> Scenario:
    return _scenario()


@pytest.fixture(scope="module")
def book(default_scenario: Scenario) -> Book:
    return generate_book(default_scenario, Streams(2026))


def _segment_mask(book: Book, name: str) -> np.ndarray:
    return book.latent.segment == SEGMENTS.index(name)


# ============================================================================ segments


@pytest.mark.parametrize("size", [1, 7, 997, 12_345, N])
def test_segment_shares_exact_to_one_account(size: int) -> None:
    scenario = _scenario(size)
    book = generate_book(scenario, Streams(1))
    counts = np.bincount(book.latent.segment, minlength=len(SEGMENTS))
    assert counts.sum() == size
    for k, name in enumerate(SEGMENTS):
        target = scenario.population.segments[name].share * size
        assert abs(counts[k] - target) < 1.0, (name, counts[k], target)


def test_custom_shares_including_an_empty_segment() -> None:
    shares = {"on_time": 0.5, "self_curer": 0.2, "cash_flow": 0.0, "unwilling": 0.15,
              "hardship": 0.1, "unreachable": 0.05}
    segments = {name: {"share": s} for name, s in shares.items()}
    scenario = _scenario(1001, segments=segments)
    book = generate_book(scenario, Streams(1))
    counts = np.bincount(book.latent.segment, minlength=len(SEGMENTS))
    for k, name in enumerate(SEGMENTS):
        assert abs(counts[k] - shares[name] * 1001) < 1.0, name
    assert counts[SEGMENTS.index("cash_flow")] == 0


@pytest.mark.parametrize(
    ("shares", "size"),
    [
        # Thirds written to six places: valid (the validator allows a 1e-6 slack in the
        # sum), yet 5e6 x 0.999999 leaves 5 accounts to hand out among six segments.
        ([0.333333, 0.333333, 0.333333, 0.0, 0.0, 0.0], 5_000_000),
        ([0.333333, 0.333333, 0.333333, 0.0, 0.0, 0.0], 50_000_000),
        # A sum just above 1: the floors alone would exceed the book.
        ([0.2, 0.2, 0.2, 0.2, 0.200001, 0.0], 50_000_000),
        ([0.69, 0.12, 0.153, 0.025, 0.008, 0.004], 20_000),
    ],
)
def test_segment_counts_fill_the_book_exactly(shares: list[float], size: int) -> None:
    # Counts must add up to the book, give nothing to an empty segment, and each be
    # within one account of its share (of the shares' total, which may be 1 +- 1e-6).
    counts = _counts(shares, size)
    assert sum(counts) == size
    total = sum(shares)
    for share, count in zip(shares, counts, strict=True):
        if share == 0:
            assert count == 0
        assert abs(count - share / total * size) < 1.0


def test_segments_are_peeled_from_the_extremes_of_their_trait(book: Book) -> None:
    # assign_segments takes, in order, the lowest ability (hardship), then the lowest
    # willingness (unwilling), then the lowest ability (cash_flow) among the accounts
    # still free. So each segment's trait lies entirely below that of every segment
    # assigned after it.
    lat = book.latent

    def trait(name: str, values: np.ndarray) -> np.ndarray:
        return values[_segment_mask(book, name)]

    later_than_hardship = ("unwilling", "cash_flow", "self_curer", "on_time")
    assert trait("hardship", lat.ability).max() <= min(
        trait(s, lat.ability).min() for s in later_than_hardship)
    assert trait("unwilling", lat.willingness).max() <= min(
        trait(s, lat.willingness).min() for s in ("cash_flow", "self_curer", "on_time"))
    assert trait("cash_flow", lat.ability).max() <= min(
        trait(s, lat.ability).min() for s in ("self_curer", "on_time"))


def test_assign_segments_counts_and_order_directly() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    fraud, ability, willingness, attention = rng.random((4, n))
    shares = [0.4, 0.2, 0.1, 0.1, 0.1, 0.1]
    seg = assign_segments(fraud, ability, willingness, attention, shares)
    assert np.bincount(seg, minlength=6).tolist() == [400, 200, 100, 100, 100, 100]
    unreachable = seg == SEGMENTS.index("unreachable")
    assert fraud[unreachable].min() >= fraud[~unreachable].max()
    self_curer = seg == SEGMENTS.index("self_curer")
    on_time = seg == SEGMENTS.index("on_time")
    assert attention[self_curer].max() <= attention[on_time].min()


# ============================================================================ latent traits


def test_ability_willingness_correlation(book: Book, default_scenario: Scenario) -> None:
    # Gaussian copula with correlation rho: the sample correlation of n normal pairs has
    # SE (1 - rho^2) / sqrt(n) = 0.0034 at rho = 0.5, n = 50 000; tolerance 3 SE.
    rho = default_scenario.population.ability_willingness_correlation
    r = np.corrcoef(book.latent.ability, book.latent.willingness)[0, 1]
    assert abs(r - rho) < 3 * (1 - rho**2) / np.sqrt(N)
    # Both margins standard normal: KS p > 0.001.
    assert stats.kstest(book.latent.ability, "norm").pvalue > 0.001
    assert stats.kstest(book.latent.willingness, "norm").pvalue > 0.001


@pytest.mark.parametrize("rho", [-0.6, 0.0, 0.8])
def test_correlation_follows_the_scenario(rho: float) -> None:
    book = generate_book(_scenario(ability_willingness_correlation=rho), Streams(3))
    r = np.corrcoef(book.latent.ability, book.latent.willingness)[0, 1]
    assert abs(r - rho) < 3 * (1 - rho**2) / np.sqrt(N)


def test_tolerance_means_by_segment(book: Book, default_scenario: Scenario) -> None:
    # Lognormals are parameterised by their mean: the sample mean of each segment must
    # match it. SE = mean * sqrt(exp(sigma^2) - 1) / sqrt(n_segment) (n_segment >= 1 500
    # here); tolerance 4 SE over the six segments.
    for name in SEGMENTS:
        dist = default_scenario.population.segments[name].tolerance
        x = book.latent.tolerance[_segment_mask(book, name)]
        se = dist.mean * np.sqrt(np.expm1(dist.sigma**2)) / np.sqrt(x.size)
        assert abs(x.mean() - dist.mean) < 4 * se, (name, x.mean(), dist.mean)


# ============================================================================ the score


@pytest.mark.parametrize("auc", [0.6, 0.75, 0.85])
def test_score_auc_matches_the_scenario(auc: float) -> None:
    # AUC = P(score of a good account > score of a bad one), ties counting half: the
    # Mann-Whitney U statistic / (n_good n_bad). With ~9 500 bad (score_bad segments:
    # cash_flow, unwilling, hardship, unreachable, about a fifth of the book) and ~40 500
    # good accounts the Hanley-McNeil SE is about 0.003; the tolerance 0.015 is 5 SE,
    # leaving room for the rounding of scores to whole points and the clip to 300-900.
    # (A score with no signal has AUC 0.5; one that ignored the setting would miss by
    # 0.1 between the three cases.)
    scenario = _scenario(score={"auc": auc})
    book = generate_book(scenario, Streams(4))
    bad_segments = [k for k, name in enumerate(SEGMENTS)
                    if scenario.population.segments[name].score_bad]
    bad = np.isin(book.latent.segment, bad_segments)
    score = book.observable.score
    u = stats.mannwhitneyu(score[~bad], score[bad], alternative="two-sided").statistic
    observed = u / (bad.sum() * (~bad).sum())
    assert abs(observed - auc) < 0.015, (observed, auc)


def test_score_mean_and_spread(book: Book, default_scenario: Scenario) -> None:
    # The score is standardised to the scenario's mean and sd. SE of the mean: sd/sqrt(n)
    # = 0.31 points; SE of the sd: sd/sqrt(2n) = 0.22 points; tolerance 3 SE each (the
    # mixture is not normal, so the sd's SE is approximate; rounding adds 1/12 variance).
    sc = default_scenario.population.score
    score = book.observable.score
    assert abs(score.mean() - sc.mean) < 3 * sc.sd / np.sqrt(N)
    assert abs(score.std() - sc.sd) < 3 * sc.sd / np.sqrt(2 * N)
    assert score.min() >= 300 and score.max() <= 900
    assert np.array_equal(score, np.round(score))


def test_score_ranks_bad_segments_lower(book: Book) -> None:
    score = book.observable.score
    on_time = score[_segment_mask(book, "on_time")].mean()
    for name in ("cash_flow", "unwilling", "hardship", "unreachable"):
        assert score[_segment_mask(book, name)].mean() < on_time - 20, name


# ============================================================================ observables


def test_unreachable_segment_has_lower_on_file_rates(book: Book,
                                                     default_scenario: Scenario) -> None:
    # P(on file) = base rate x the segment's reachability multiplier (0.3 for
    # unreachable, 1 for the rest). Binomial SE sqrt(p(1-p)/n) with n = 1 500 unreachable
    # accounts is at most 0.013; 3 SE for each of the five channels.
    pop = default_scenario.population
    base = pop.on_file.as_tuple()
    unreachable = _segment_mask(book, "unreachable")
    reach = pop.segments["unreachable"].reachability_multiplier
    for c, name in enumerate(CHANNELS):
        rate_u = book.observable.on_file[unreachable, c].mean()
        rate_r = book.observable.on_file[~unreachable, c].mean()
        p_u, p_r = base[c] * reach, base[c]
        assert abs(rate_u - p_u) < 3 * np.sqrt(p_u * (1 - p_u) / unreachable.sum()), name
        assert abs(rate_r - p_r) < 3 * np.sqrt(p_r * (1 - p_r) / (~unreachable).sum()), name
        assert rate_u < rate_r - 0.3, name
    # sms, robocall and agent_call share one phone draw: the same phone is on file.
    of = book.observable.on_file
    assert np.array_equal(of[:, 2], of[:, 4])
    assert np.array_equal(of[:, 3], of[:, 4])


def test_amounts_balances_and_lines(book: Book, default_scenario: Scenario) -> None:
    pop = default_scenario.population
    o = book.observable
    # Lognormal by its mean: SE = mean sqrt(exp(sigma^2) - 1) / sqrt(n) = 1.8 at n = 50 000.
    se = pop.amount_due.mean * np.sqrt(np.expm1(pop.amount_due.sigma**2)) / np.sqrt(N)
    assert abs(o.amount_due.mean() - pop.amount_due.mean) < 3 * se
    assert (o.amount_due > 0).all()
    assert (o.balance >= o.amount_due).all()
    ratio = o.balance / o.amount_due
    np.testing.assert_allclose(ratio, np.round(ratio), rtol=1e-9)  # whole instalments
    assert np.round(ratio).max() <= 1 + pop.instalments_remaining
    assert (o.credit_line >= o.balance).all()
    assert (np.mod(o.credit_line, 100) == 0).all()
    assert (o.due_day >= pop.due_day.low).all() and (o.due_day <= pop.due_day.high).all()
    assert set(np.unique(o.due_day)) == set(range(31))  # whole days 0..30, all used
    # The dynamic state starts from the observable amounts.
    np.testing.assert_array_equal(book.state.owed, o.amount_due)
    np.testing.assert_array_equal(book.state.balance, o.balance)


def test_product_and_register_shares(book: Book, default_scenario: Scenario) -> None:
    # Multinomial shares: SE sqrt(p(1-p)/n) <= 0.0022; tolerance 3 SE per product.
    pop = default_scenario.population
    counts = np.bincount(book.observable.product, minlength=len(PRODUCTS))
    for k, name in enumerate(PRODUCTS):
        p = pop.products[name]  # type: ignore[index]
        assert abs(counts[k] / N - p) < 3 * np.sqrt(p * (1 - p) / N), name
    p = pop.do_not_contact_share
    assert abs(book.observable.do_not_contact.mean() - p) < 3 * np.sqrt(p * (1 - p) / N)
    assert not book.observable.consent_quiet_hours.any()  # default consent share is 0


# ============================================================================ reproducibility


def _arrays(book: Book) -> dict[str, np.ndarray]:
    out = {}
    for group in ("latent", "observable", "state"):
        obj = getattr(book, group)
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, np.ndarray):
                out[f"{group}.{f.name}"] = value
    for f in dataclasses.fields(book.segments):
        out[f"segments.{f.name}"] = getattr(book.segments, f.name)
    return out


def test_same_seed_gives_identical_book() -> None:
    scenario = _scenario(5000)
    a = _arrays(generate_book(scenario, Streams(99)))
    b = _arrays(generate_book(scenario, Streams(99)))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_different_seeds_give_different_books() -> None:
    scenario = _scenario(5000)
    a = generate_book(scenario, Streams(99))
    b = generate_book(scenario, Streams(100))
    assert not np.array_equal(a.latent.ability, b.latent.ability)
    assert not np.array_equal(a.observable.score, b.observable.score)
    assert not np.array_equal(a.latent.segment, b.latent.segment)


def test_lowest_picks_what_a_stable_sort_picks_ties_included() -> None:
    # Segments peel off the k lowest trait values; the partition must choose exactly the
    # accounts a stable argsort would, also when values tie at the k-th place.
    rng = np.random.default_rng(0)
    for trial in range(2000):
        n = int(rng.integers(1, 60))
        k = int(rng.integers(0, n + 3))
        values = rng.integers(0, 5, n).astype(float) if trial % 2 else rng.random(n)
        expected = np.sort(np.argsort(values, kind="stable")[:k])
        assert np.array_equal(np.sort(_lowest(values, k)), expected), (values, k)


@pytest.mark.parametrize("living", [False, True])
def test_a_segment_share_moves_only_the_accounts_that_change_segment(living: bool) -> None:
    """Common random numbers across a segment's share: drawn with the self-curers' share
    0.12 and 0.125 (the on-time share making up the difference), the books differ only
    where an account changed segment (its score too, and the score's standardisation by
    a rounding). Every account that kept its
    segment keeps its due day, amount, prior delinquencies, tolerance and complaint
    propensity; on a living book, where day-0 arrears set the due day and add to the
    prior delinquencies, all but the few the arrears' weighted draw hands to another
    account. Drawn segment by segment, or with
    numpy's Poisson sampler (whose uniforms per draw depend on the mean), almost every
    account's draws shifted."""
    from simulator.scenario import load_scenario

    base = load_scenario("scenarios/default.yaml") if living else None
    books = []
    for share in (0.12, 0.125):
        data: dict[str, Any] = base.to_dict() if base is not None else {
            "seed": 5, "horizon_days": 120}
        pop = data.setdefault("population", {})
        pop["size"] = 5000
        segments = pop.setdefault("segments", {})
        segments.setdefault("self_curer", {})["share"] = share
        segments.setdefault("on_time", {})["share"] = 0.81 - share  # the sum stays 1
        books.append(generate_book(scenario_from_dict(data), Streams(17)))
    a, b = books
    n = 5000
    kept = a.latent.segment[:n] == b.latent.segment[:n]
    assert 0 < (~kept).sum() < 0.02 * n
    for name in ("due_day", "amount_due", "prior_delinquencies"):
        x, y = getattr(a.observable, name)[:n], getattr(b.observable, name)[:n]
        if living and name in ("due_day", "prior_delinquencies"):  # arrears move both
            assert (x[kept] == y[kept]).mean() > 0.98, name
        else:
            np.testing.assert_array_equal(x[kept], y[kept], err_msg=name)
    for name in ("tolerance", "complaint_propensity"):
        np.testing.assert_array_equal(getattr(a.latent, name)[:n][kept],
                                      getattr(b.latent, name)[:n][kept], err_msg=name)


def test_poisson_by_inversion_is_scipys_inverse_cdf() -> None:
    """The table lookup gives exactly scipy's ``poisson.ppf`` (the smallest count whose
    CDF reaches the uniform), at the edges too (u = 0, u just below 1) and for a mean of
    0 (always 0)."""
    from scipy.stats import poisson

    from simulator.population import _poisson_by_inversion

    rng = np.random.default_rng(3)
    n = 200_000
    means = np.array([0.1, 0.6, 1.2, 1.5, 4.0, 0.0])[rng.integers(0, 6, n)]
    u = rng.random(n)
    u[:5], u[5:10] = 0.0, np.nextafter(1.0, 0.0)
    with np.errstate(invalid="ignore"):
        expected = poisson.ppf(u, np.maximum(means, 1e-300))
    expected = np.where(means > 0, np.maximum(np.nan_to_num(expected), 0.0), 0.0)
    np.testing.assert_array_equal(_poisson_by_inversion(u, means), expected)
