"""Analytic validation of the repayment process (docs/model.md sections 3-4).

Three tiers: the exact next-event sampler against its distribution; degenerate
scenarios run through the real engine against closed forms; properties every run must
keep (money conserved, one consistent terminal state, lazy advance equal to eager).

Every random test has a fixed seed, so it is deterministic; tolerances are stated in
standard errors next to each assertion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulator.book import CHARGED_OFF, CURED, DELINQUENT, PAID_ON_TIME
from simulator.engine import Results, run
from simulator.population import generate_book
from simulator.recorder import Event, Recorder
from simulator.repayment import RepaymentProcess, next_event_delay
from simulator.rng import Streams
from simulator.scenario import SEGMENTS, Scenario, scenario_from_dict
from simulator.strategies import Strategy, make_requests
from simulator.strategies.loader import BUILTINS

FLAT_BUCKETS = {"M0": 1.0, "M1": 1.0, "M2": 1.0, "M3": 1.0, "M4": 1.0, "agency": 1.0}


def _uniforms(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = rng.random((2, n))
    return np.clip(u[0], 1e-300, None), np.clip(u[1], 1e-300, None)


def _delay(lam: float, excess: float, kappa: float, seed: int, n: int) -> np.ndarray:
    u1, u2 = _uniforms(seed, n)
    full = np.full(n, 1.0)
    return next_event_delay(full * lam, full * excess, full * kappa, u1, u2)


def _all_segments(**params: Any) -> dict[str, dict[str, Any]]:
    return {name: dict(params) for name in SEGMENTS}


# ============================================================================ sampler

N_DRAWS = 20_000


def test_delay_without_excess_is_exponential() -> None:
    # KS at n = 20 000: a correct sampler fails p > 0.001 with probability 0.001 (fixed
    # seed, so deterministic). The critical distance is 1.95/sqrt(n) = 0.014; a rate off
    # by a fraction eps moves the CDF by up to eps/e = 0.37 eps: KS catches eps > ~4 %.
    # The mean check is sharper: SE of the mean of Exp is (1/lam)/sqrt(n) = 0.7 % of it,
    # and 3 SE catches a rate off by more than ~2 %.
    lam = 0.07
    d = _delay(lam, 0.0, 0.7, seed=1, n=N_DRAWS)
    assert np.isfinite(d).all()
    assert stats.kstest(d, "expon", args=(0, 1 / lam)).pvalue > 0.001
    assert abs(d.mean() - 1 / lam) < 3 * (1 / lam) / np.sqrt(N_DRAWS)


@pytest.mark.parametrize(("excess", "kappa"), [(0.3, 0.7), (1.0, 0.5), (0.05, 0.1)])
def test_excess_clock_fires_with_probability_one_minus_exp(excess: float, kappa: float) -> None:
    # With no long-run intensity the integrated intensity is bounded by E/kappa, so the
    # clock fires at all with probability 1 - exp(-E/kappa). Binomial SE sqrt(p(1-p)/n)
    # is at most 0.0035 at n = 20 000; the tolerance is 3 SE (two-sided 0.27 %).
    d = _delay(0.0, excess, kappa, seed=2, n=N_DRAWS)
    p = 1 - np.exp(-excess / kappa)
    share = np.isfinite(d).mean()
    se = np.sqrt(p * (1 - p) / N_DRAWS)
    assert abs(share - p) < 3 * se
    # The finite times follow the conditional CDF (1 - exp(-Lambda(s))) / p with
    # Lambda(s) = E (1 - exp(-kappa s)) / kappa: KS with p > 0.001.
    finite = d[np.isfinite(d)]

    def cdf(s: np.ndarray) -> np.ndarray:
        return -np.expm1(-excess * -np.expm1(-kappa * s) / kappa) / p

    assert stats.kstest(finite, cdf).pvalue > 0.001


@pytest.mark.parametrize("excess", [0.05, 0.4])
def test_zero_kappa_is_exponential_at_the_excess_rate(excess: float) -> None:
    # kappa = 0: the excess never decays, so the delay is Exp(E). KS p > 0.001.
    d = _delay(0.0, excess, 0.0, seed=3, n=N_DRAWS)
    assert np.isfinite(d).all()
    assert stats.kstest(d, "expon", args=(0, 1 / excess)).pvalue > 0.001


def test_both_clocks_give_the_hawkes_survival_function() -> None:
    # The minimum of the two clocks must have survival exp(-lam s - E(1-e^{-kappa s})/kappa),
    # the survival of the intensity lam + E exp(-kappa s). KS p > 0.001, n = 20 000.
    lam, excess, kappa = 0.02, 0.4, 0.3
    d = _delay(lam, excess, kappa, seed=4, n=N_DRAWS)

    def cdf(s: np.ndarray) -> np.ndarray:
        return -np.expm1(-lam * s - excess * -np.expm1(-kappa * s) / kappa)

    assert stats.kstest(d, cdf).pvalue > 0.001


@pytest.mark.parametrize(("lam", "excess", "kappa", "apart"),
                         [(0.1, -0.08, 0.3, True), (0.05, -0.05, 0.2, True),
                          (0.3, -0.01, 2.0, False)],
                         ids=["below", "from_zero", "barely_below"])
def test_negative_excess_gives_the_rising_survival_function(lam: float, excess: float,
                                                            kappa: float, apart: bool) -> None:
    # A start intensity below lam (excess < 0): the intensity lam + E e^{-kappa s} rises
    # towards lam; the survival is still exp(-Lambda(s)), Lambda(s) = lam s + E (1 -
    # e^{-kappa s}) / kappa. KS p > 0.001 at n = 20 000 (from_zero: the intensity starts
    # at 0, the branch point of the Lambert W function). Where the rise is slow enough
    # (``apart``) the mean must also differ from the Exp(lam) mean 1/lam that clamping the
    # excess at 0 would give, by > 10 SE.
    d = _delay(lam, excess, kappa, seed=5, n=N_DRAWS)
    assert np.isfinite(d).all() and (d >= 0).all()

    def cdf(s: np.ndarray) -> np.ndarray:
        return -np.expm1(-(lam * s + excess * -np.expm1(-kappa * s) / kappa))

    assert stats.kstest(d, cdf).pvalue > 0.001
    # The exact mean: E[delay] = integral of the survival (numerically, to ~1e-9).
    grid = np.linspace(0.0, 400.0 / lam, 400_001)
    mean = float(np.trapezoid(1.0 - cdf(grid), grid))
    se = d.std(ddof=1) / np.sqrt(N_DRAWS)
    assert abs(d.mean() - mean) < 3 * se, (d.mean(), mean, se)
    if apart:
        assert mean - 1 / lam > 10 * se


def test_negative_excess_inverts_the_integrated_intensity() -> None:
    # The delay solves Lambda(s) = -ln u1 to rounding, and is monotone in u1 (common
    # random numbers line up across arms). Without decay (kappa = 0) the rate is the
    # constant lam + E, infinite delay when it is 0.
    u = np.linspace(1e-9, 1 - 1e-9, 2001)
    one = np.ones_like(u)
    lam, excess, kappa = 0.1, -0.1, 0.3
    d = next_event_delay(lam * one, excess * one, kappa * one, u, 0.5 * one)
    cum = lam * d + excess * -np.expm1(-kappa * d) / kappa
    np.testing.assert_allclose(cum, -np.log(u), rtol=1e-9, atol=1e-12)
    assert (np.diff(d) <= 0).all()
    flat = next_event_delay(lam * one, -0.04 * one, 0.0 * one, u, 0.5 * one)
    np.testing.assert_allclose(flat, -np.log(u) / 0.06, rtol=1e-12)
    assert np.isinf(next_event_delay(one * 0.1, one * -0.1, one * 0.0, u, u)).all()
    # A negative excess in some rows leaves the other rows' delays as they were.
    mixed = np.where(np.arange(u.size) % 2 == 0, -0.05, 0.3)
    # (Contiguous copies: numpy's log may differ in the last bit between its vectorised
    # path and the strided one.)
    u_rev = u[::-1].copy()
    both = next_event_delay(lam * one, mixed, kappa * one, u, u_rev)
    pos = mixed > 0
    alone = next_event_delay(lam * one[pos], mixed[pos], kappa * one[pos], u[pos], u_rev[pos])
    np.testing.assert_array_equal(both[pos], alone)


def test_no_intensity_never_fires() -> None:
    u = np.array([0.5, 1e-12, 0.999])
    zero = np.zeros(3)
    assert np.isinf(next_event_delay(zero, zero, zero + 0.7, u, u)).all()
    assert np.isinf(next_event_delay(zero, zero, zero, u, u)).all()


def test_delay_is_monotone_in_the_uniforms() -> None:
    # Inversion sampling: a larger uniform never gives a longer wait (each clock is a
    # decreasing function of its own uniform), which is what makes common random numbers
    # line up across strategy arms. Small uniforms give no event at all on the excess
    # clock (inf), which must come first in the non-increasing order.
    u = np.linspace(1e-6, 1 - 1e-6, 1001)
    one = np.ones_like(u)
    d = next_event_delay(0.0 * one, 0.5 * one, 0.7 * one, 0.5 * one, u)
    assert np.isinf(d[0]) and np.isfinite(d[-1])
    finite = np.isfinite(d)
    assert (np.diff(finite.astype(int)) >= 0).all()  # inf ... inf, then finite
    assert (np.diff(d[finite]) <= 0).all()
    d1 = next_event_delay(0.1 * one, 0.0 * one, 0.7 * one, u, 0.5 * one)
    assert (np.diff(d1) <= 0).all()


# ============================================================================ closed forms


def _degenerate(lam_0: float, lam_inf: float, kappa: float, size: int = 20_000,
                horizon: float = 120.0) -> Scenario:
    """No self-excitation, no due or payday jumps, every payment in full."""
    segments = _all_segments(lambda_0=lam_0, lambda_inf=lam_inf, kappa=kappa, delta10=0.0,
                             delta11=0.0, due_impulse=0.0, payday_impulse=0.0,
                             bureau_impulse=0.0, full_payment_prob=1.0)
    return scenario_from_dict({
        "horizon_days": horizon,
        "population": {"size": size, "segments": segments},
        "repayment": {"bucket_multiplier": FLAT_BUCKETS},
    })


def _paid_delay(scenario: Scenario, res: Results) -> np.ndarray:
    a = res.accounts
    t0 = a["due_day"].to_numpy() + 1.0 - scenario.population.statement_lead_days
    return a["t_paid"].to_numpy() - t0


@pytest.mark.parametrize(
    ("lam_0", "lam_inf", "kappa"),
    [(0.05, 0.05, 0.7), (0.3, 0.02, 0.3)],
    ids=["constant", "decaying_excess"],
)
def test_no_contact_matches_closed_form_first_payment(lam_0: float, lam_inf: float,
                                                      kappa: float) -> None:
    # With intensity lam_inf + (lam_0 - lam_inf) e^{-kappa s} from the statement date and
    # every payment in full, P(paid by T) = 1 - exp(-Lambda(T)),
    # Lambda(T) = lam_inf T + (lam_0 - lam_inf)(1 - e^{-kappa T}) / kappa
    # (= 1 - exp(-lam T) when lam_0 = lam_inf). Accounts are independent, so the share is
    # binomial: SE = sqrt(p(1-p)/n) <= 0.0035 at n = 20 000; tolerance 3 SE at each T.
    # Statements fall on days -14..16 and the horizon is 120, so T <= 100 is observed
    # for every account.
    scenario = _degenerate(lam_0, lam_inf, kappa)
    res = run(scenario, "no_contact", seed=20261128)
    delay = _paid_delay(scenario, res)
    n = delay.size
    assert n == 20_000
    assert (delay[np.isfinite(delay)] >= 0).all()
    for T in (2.0, 5.0, 15.0, 30.0, 60.0, 100.0):
        cum = lam_inf * T + (lam_0 - lam_inf) * -np.expm1(-kappa * T) / kappa
        p = -np.expm1(-cum)
        se = np.sqrt(p * (1 - p) / n)
        observed = float(np.mean(delay <= T))
        assert abs(observed - p) < 3 * se, (T, observed, p, se)
    # The whole distribution up to T = 100: KS on min(delay, 100) is not continuous at
    # 100, so test the delays that fell before 100 against the truncated CDF (p > 0.001).
    cap = 100.0
    p_cap = -np.expm1(-(lam_inf * cap + (lam_0 - lam_inf) * -np.expm1(-kappa * cap) / kappa))
    early = delay[delay <= cap]

    def cdf(s: np.ndarray) -> np.ndarray:
        return -np.expm1(-(lam_inf * s + (lam_0 - lam_inf) * -np.expm1(-kappa * s) / kappa)) / p_cap

    assert stats.kstest(early, cdf).pvalue > 0.001


def test_start_below_lambda_inf_matches_closed_form_remaining_balance() -> None:
    # lambda_0 = 0.02 < lambda_inf = 0.1: the intensity rises from 0.02 towards 0.1,
    # lambda(s) = lam_inf + (lam_0 - lam_inf) e^{-kappa s} from the statement date.
    # Derivation of the expected remaining amount owed, no contact, no self-excitation
    # (delta10 = delta11 = 0), no due, payday or bureau jumps, flat buckets, no late fee:
    # payments form a Poisson process with mean Lambda(T) = lam_inf T + (lam_0 - lam_inf)
    # (1 - e^{-kappa T}) / kappa by time T. Each payment multiplies what is owed by an
    # independent F: 0 (a full payment, probability p) or 1 - U, U uniform on [lo, hi], so
    # E F = (1 - p)(1 - (lo + hi) / 2). Given N payments the share still owed is the product
    # of N factors, so E[owed(T) / owed(0)] = E[(E F)^N] = exp(-Lambda(T) (1 - E F)) (the
    # probability generating function of a Poisson count). Accounts are independent: SE =
    # sd / sqrt(n) of the per-account share (~0.002 at n = 20 000); 3 SE at each T.
    # Clamping the start intensity at lambda_inf, as the sampler once did, misses by ~45 SE
    # at T = 5 (checked below, so the test can tell the two apart).
    lam_0, lam_inf, kappa, p, lo, hi = 0.02, 0.1, 0.3, 0.3, 0.2, 0.6
    segments = _all_segments(lambda_0=lam_0, lambda_inf=lam_inf, kappa=kappa, delta10=0.0,
                             delta11=0.0, due_impulse=0.0, payday_impulse=0.0,
                             bureau_impulse=0.0, full_payment_prob=p,
                             partial_fraction={"low": lo, "high": hi})
    scenario = scenario_from_dict({
        "horizon_days": 60,
        "population": {"size": 20_000, "segments": segments},
        "repayment": {"bucket_multiplier": FLAT_BUCKETS, "bureau_report_dpd": None},
    })
    res = run(scenario, "no_contact", seed=20261128)
    a, ev = res.accounts, res.events
    t0 = a["due_day"].to_numpy() + 1.0 - scenario.population.statement_lead_days
    owed0 = a["amount_due"].to_numpy()
    pay = ev[ev["event"] == "payment"]
    ids, t, amount = (pay["account_id"].to_numpy(), pay["t"].to_numpy(),
                      pay["amount"].to_numpy())
    mean_factor = (1 - p) * (1 - (lo + hi) / 2)
    for T in (5.0, 10.0, 20.0, 40.0):  # t0 + 40 <= 56 < 60: observed for every account
        paid = np.bincount(ids[t <= t0[ids] + T], amount[t <= t0[ids] + T], minlength=a.shape[0])
        share = (owed0 - paid) / owed0
        cum = lam_inf * T + (lam_0 - lam_inf) * -np.expm1(-kappa * T) / kappa
        expected = np.exp(-cum * (1 - mean_factor))
        se = share.std(ddof=1) / np.sqrt(share.size)
        assert abs(share.mean() - expected) < 3 * se, (T, share.mean(), expected, se)
        if T == 5.0:
            clamped = np.exp(-lam_inf * T * (1 - mean_factor))
            assert abs(clamped - expected) > 20 * se


def test_hawkes_mean_event_count_matches_closed_form() -> None:
    # Self-excitation: every payment is partial (a fixed 20 % of what is owed, so the
    # account is far from settled after the ~4 payments expected in 30 days) and jumps
    # the intensity by delta = delta10 + delta11 * 0.2. For a linear Hawkes process with
    # exponential kernel the mean intensity solves m' = -kappa (m - lam_inf) + delta m:
    #   m(s) = m* + (lam_0 - m*) e^{-(kappa - delta) s},  m* = lam_inf kappa / (kappa - delta),
    # so E N(T) = m* T + (lam_0 - m*)(1 - e^{-(kappa - delta) T}) / (kappa - delta).
    # Accounts are independent: SE = sd(N) / sqrt(n) (~0.015 at n = 20 000); 3 SE.
    lam_0, lam_inf, kappa, d10, d11, r = 0.11, 0.1, 0.7, 0.02, 0.5, 0.2
    segments = _all_segments(lambda_0=lam_0, lambda_inf=lam_inf, kappa=kappa, delta10=d10,
                             delta11=d11, due_impulse=0.0, payday_impulse=0.0,
                             bureau_impulse=0.0, full_payment_prob=0.0,
                             partial_fraction={"low": r, "high": r})
    scenario = scenario_from_dict({
        "population": {"size": 20_000, "segments": segments},
        "repayment": {"bucket_multiplier": FLAT_BUCKETS, "bureau_report_dpd": None},
    })
    streams = Streams(5)
    book = generate_book(scenario, streams)
    recorder = Recorder()
    process = RepaymentProcess(book, scenario, streams, recorder)
    process.start()
    T = 30.0
    t0 = book.observable.due_day + 1.0 - scenario.population.statement_lead_days
    process.advance_due(float(t0.max() + T))
    ev = recorder.frame()
    pay = ev[ev["event"] == "payment"]
    ids = pay["account_id"].to_numpy()
    within = pay["t"].to_numpy() <= t0[ids] + T
    counts = np.bincount(ids[within], minlength=book.n)
    # Nobody settled in full: every account stayed in the pure Hawkes regime.
    assert not np.isin(book.state.status, [PAID_ON_TIME, CURED]).any()
    delta = d10 + d11 * r
    m_star = lam_inf * kappa / (kappa - delta)
    expected = m_star * T + (lam_0 - m_star) * -np.expm1(-(kappa - delta) * T) / (kappa - delta)
    se = counts.std(ddof=1) / np.sqrt(book.n)
    assert abs(counts.mean() - expected) < 3 * se, (counts.mean(), expected, se)
    # Without excitation the mean would be about lam_inf T = 3.0: make sure the test can
    # tell the two apart (the excited mean is more than 10 SE above it).
    assert expected - lam_inf * T > 10 * se


@pytest.mark.parametrize("report_dpd", [1, 20, 31])
def test_bureau_report_jumps_the_intensity_once(report_dpd: int) -> None:
    # Nobody pays on their own (zero intensity); the only impulse is the credit-bureau
    # report at ``report_dpd`` days past due, a jump b in excess intensity decaying at
    # kappa. Every account is still delinquent then, so the share that ever pays is
    # 1 - exp(-b / kappa) (binomial SE <= 0.0035 at n = 20 000; 3 SE), and nobody pays
    # before the report. The report on day 1 coincides with the due-date boundary and
    # the one on day 31 with the M1 -> M2 boundary: both must still apply exactly once.
    b, kappa = 0.4, 0.7
    segments = _all_segments(lambda_0=0.0, lambda_inf=0.0, kappa=kappa, delta10=0.0,
                             delta11=0.0, due_impulse=0.0, payday_impulse=0.0,
                             bureau_impulse=b, full_payment_prob=1.0)
    scenario = scenario_from_dict({
        "horizon_days": 250,
        "population": {"size": 20_000, "segments": segments},
        "repayment": {"bucket_multiplier": FLAT_BUCKETS, "bureau_report_dpd": report_dpd,
                      "charge_off_dpd": 180},
    })
    streams = Streams(8)
    book = generate_book(scenario, streams)
    process = RepaymentProcess(book, scenario, streams, Recorder(enabled=False))
    process.start()
    process.advance_due(scenario.horizon_days)
    s, due = book.state, book.observable.due_day
    paid = np.isfinite(s.t_paid)
    # With E = 0.4, kappa = 0.7 the excess clock fires within 30 days with probability
    # 0.99998 of its total, so by charge-off (dpd 180) the share is complete.
    p = -np.expm1(-b / kappa)
    se = np.sqrt(p * (1 - p) / book.n)
    assert abs(paid.mean() - p) < 3 * se, (paid.mean(), p, se)
    assert (s.t_paid[paid] >= due[paid] + report_dpd).all()
    assert (s.status[paid] == CURED).all()


def _ever_paid_share(segments: dict[str, dict[str, Any]], repayment: dict[str, Any],
                     agency: bool, seed: int) -> tuple[float, int, np.ndarray]:
    """Share of accounts that ever pay (by a 400-day horizon), the book size and statuses."""
    scenario = scenario_from_dict({
        "horizon_days": 400,
        "population": {"size": 20_000, "segments": segments},
        "repayment": repayment,
        "agency": {"enabled": agency},
    })
    streams = Streams(seed)
    book = generate_book(scenario, streams)
    recorder = Recorder()
    process = RepaymentProcess(book, scenario, streams, recorder)
    process.start()
    process.advance_due(scenario.horizon_days)
    ev = recorder.frame()
    payers = np.unique(ev.loc[ev["event"] == "payment", "account_id"].to_numpy())
    return payers.size / book.n, book.n, book.state.status


def test_bucket_multiplier_scales_the_bureau_impulse() -> None:
    # Nobody pays on their own; the only jump is the bureau report at 61 days past due,
    # in bucket M3 whose multiplier m = 0.5 scales the whole intensity, so the excess b
    # counts as m b: the share that ever pays is 1 - exp(-m b / kappa) (the intensity
    # m b e^{-kappa s} integrates to m b / kappa). Unscaled it would be 1 - exp(-b / kappa)
    # (0.435 against 0.249 here: 40 SE apart). Binomial SE <= 0.0035 at n = 20 000; 3 SE.
    b, kappa, m = 0.4, 0.7, 0.5
    segments = _all_segments(lambda_0=0.0, lambda_inf=0.0, kappa=kappa, delta10=0.0,
                             delta11=0.0, due_impulse=0.0, payday_impulse=0.0,
                             bureau_impulse=b, full_payment_prob=1.0)
    share, n, _ = _ever_paid_share(segments, {
        "bucket_multiplier": {**FLAT_BUCKETS, "M3": m}, "bureau_report_dpd": 61,
        "charge_off_dpd": 180}, agency=False, seed=21)
    p = -np.expm1(-m * b / kappa)
    se = np.sqrt(p * (1 - p) / n)
    assert abs(share - p) < 3 * se, (share, p, se)


def test_agency_multiplier_scales_the_excess_carried_over() -> None:
    # The due date passing jumps the intensity by b (bucket M1, m1 = 1); charge-off comes
    # d = 2 days later (at 3 days past due), after which the agency multiplier m_a = 0.25
    # scales the whole intensity, the excess carried over included. The integrated
    # intensity is (b / kappa) [m1 (1 - e^{-kappa d}) + m_a e^{-kappa d}], and the share
    # that ever pays is 1 - exp(-that). Were the excess carried over at full strength it
    # would be 1 - exp(-b / kappa) (0.435 against 0.372: 18 SE apart). Binomial SE <=
    # 0.0035 at n = 20 000; 3 SE.
    b, kappa, m_a, d = 0.4, 0.7, 0.25, 2.0
    segments = _all_segments(lambda_0=0.0, lambda_inf=0.0, kappa=kappa, delta10=0.0,
                             delta11=0.0, due_impulse=b, payday_impulse=0.0,
                             bureau_impulse=0.0, full_payment_prob=1.0)
    share, n, status = _ever_paid_share(segments, {
        "bucket_multiplier": {**FLAT_BUCKETS, "agency": m_a}, "bureau_report_dpd": None,
        "charge_off_dpd": 3}, agency=True, seed=22)
    cum = b / kappa * (-np.expm1(-kappa * d) + m_a * np.exp(-kappa * d))
    p = -np.expm1(-cum)
    se = np.sqrt(p * (1 - p) / n)
    assert abs(share - p) < 3 * se, (share, p, se)
    assert (status == CHARGED_OFF).any() and (status == CURED).any()


# ============================================================================ properties


@pytest.fixture(scope="module")
def charged_off_scenario() -> Scenario:
    """A small default book with a short charge-off, a late fee and agency placement.

    Due dates fall on days 0-30 and charge-off at 30 days past due, so with a 50-day
    horizon accounts due on days 0-20 can be charged off while later ones can still be
    delinquent at the end: every terminal state is reachable.
    """
    return scenario_from_dict({
        "horizon_days": 50,
        "population": {"size": 2000},
        "repayment": {"charge_off_dpd": 30, "late_fee": 25.0},
        "agency": {"enabled": True, "commission": 0.3},
    })


@pytest.fixture(scope="module", params=["no_contact", "fixed_cadence"])
def charged_off_run(request: pytest.FixtureRequest, charged_off_scenario: Scenario) -> Results:
    return run(charged_off_scenario, request.param, seed=7)


def test_money_is_conserved_per_account(charged_off_run: Results,
                                        charged_off_scenario: Scenario) -> None:
    a = charged_off_run.accounts
    fee = charged_off_scenario.repayment.late_fee
    fees = np.where(np.isfinite(a["t_delinquent"]), fee, 0.0)
    lhs = a["paid_in_house"] + a["balance_end"] + a["written_off"]
    rhs = a["balance_start"] + fees
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-6)
    # The agency collects towards the written-off balance, never more: what is still owed
    # after charge-off is the rest of it. In house, what is paid towards the amount past
    # due never exceeds it.
    assert (a["agency_collected"] <= a["written_off"] + 1e-9).all()
    charged = a["final_state"] == "charged_off"
    np.testing.assert_allclose(a.loc[charged, "owed_end"],
                               a.loc[charged, "written_off"] - a.loc[charged, "agency_collected"],
                               rtol=0, atol=1e-6)
    assert (a["paid_delinquent"] <= a["amount_delinquent"] + 1e-6).all()
    for col in ("paid_in_house", "balance_end", "written_off", "agency_collected", "owed_end",
                "paid_before_start"):
        assert (a[col] >= -1e-9).all(), col
    # The scenario must exercise what it claims to: charge-offs and agency recoveries,
    # and under the cadence contacts and promises (which move money too).
    assert (a["written_off"] > 0).sum() > 50
    assert a["agency_collected"].sum() > 0
    if charged_off_run.strategy == "fixed_cadence":
        assert a.filter(like="contacts_").to_numpy().sum() > 500
        assert a["promises_made"].sum() > 0


def test_payment_events_add_up_to_the_ledger(charged_off_run: Results) -> None:
    ev, a = charged_off_run.events, charged_off_run.accounts
    pay = ev[ev["event"] == "payment"]
    assert (pay["amount"] > 0).all()
    in_house = pay[pay["code"] != 2].groupby("account_id")["amount"].sum()
    agency = pay[pay["code"] == 2].groupby("account_id")["amount"].sum()
    np.testing.assert_allclose(in_house.reindex(a.index, fill_value=0.0), a["paid_in_house"],
                               atol=1e-6)
    np.testing.assert_allclose(agency.reindex(a.index, fill_value=0.0), a["agency_collected"],
                               atol=1e-6)


def test_each_account_ends_in_one_consistent_state(charged_off_run: Results,
                                                   charged_off_scenario: Scenario) -> None:
    a = charged_off_run.accounts
    horizon = charged_off_scenario.horizon_days
    cod = charged_off_scenario.repayment.charge_off_dpd
    due_passes = a["due_day"] + 1.0
    state = a["final_state"].astype(str)
    assert state.notna().all()
    assert state.isin(["pre_due", "paid_on_time", "delinquent", "cured", "charged_off"]).all()
    # Every due date (days 0-30) passes inside a 120-day horizon.
    assert (state != "pre_due").all()

    def rows(name: str) -> pd.DataFrame:
        return a[state == name]

    on_time = rows("paid_on_time")
    assert (on_time["owed_end"] == 0).all()
    assert (on_time["t_paid"] <= on_time["due_day"] + 1.0).all()
    assert np.isinf(on_time["t_delinquent"]).all()
    assert np.isinf(on_time["t_charged_off"]).all()
    assert (on_time["amount_delinquent"] == 0).all()

    cured = rows("cured")
    assert (cured["owed_end"] == 0).all()
    assert np.isfinite(cured["t_delinquent"]).all()
    assert (cured["t_paid"] >= cured["t_delinquent"]).all()
    assert (cured["t_paid"] < cured["due_day"] + cod).all()
    assert np.isinf(cured["t_charged_off"]).all()

    delinquent = rows("delinquent")
    assert (delinquent["owed_end"] > 0).all()
    assert (delinquent["t_delinquent"] == delinquent["due_day"] + 1.0).all()
    assert np.isinf(delinquent["t_paid"]).all()
    assert np.isinf(delinquent["t_charged_off"]).all()
    # Still delinquent only if charge-off day had not come by the horizon.
    assert (delinquent["due_day"] + cod > horizon).all()

    assert len(delinquent) > 0 and len(cured) > 0 and len(on_time) > 0

    charged = rows("charged_off")
    assert len(charged) > 0
    assert (charged["t_charged_off"] == charged["due_day"] + cod).all()
    assert (charged["t_delinquent"] == charged["due_day"] + 1.0).all()
    assert (charged["balance_end"] == 0).all()
    assert (charged["written_off"] > 0).all()
    # Accounts written off are exactly those that were charged off.
    assert ((a["written_off"] > 0) == (state == "charged_off")).all()

    # Delinquency is recorded exactly when the due date passed unpaid.
    delinquent_ever = np.isfinite(a["t_delinquent"])
    assert (delinquent_ever == state.isin(["delinquent", "cured", "charged_off"])).all()
    assert (a.loc[delinquent_ever, "t_delinquent"] == due_passes[delinquent_ever]).all()


def _lazy_scenario() -> Scenario:
    return scenario_from_dict({
        "horizon_days": 200,
        "population": {"size": 3000},
        "repayment": {"charge_off_dpd": 60, "late_fee": 10.0},
        "agency": {"enabled": True},
    })


def _fresh(scenario: Scenario, seed: int) -> RepaymentProcess:
    streams = Streams(seed)
    book = generate_book(scenario, streams)
    process = RepaymentProcess(book, scenario, streams, Recorder(enabled=False))
    process.start()
    # A few open promises set by hand so promise dates are exercised too.
    s = book.state
    ids = np.arange(0, book.n, 17)
    s.t_promise[ids] = book.observable.due_day[ids] + 5.5
    s.promise_amount[ids] = 0.5 * s.owed[ids]
    s.promise_kept[ids] = ids % 2 == 0
    return process


_STATE_COLUMNS = ("status", "owed", "balance", "t_paid", "t_delinquent", "t_charged_off",
                  "paid_in_house", "agency_collected", "written_off", "excess", "t_state",
                  "t_pay", "repay_counter", "promises_broken")


def _assert_same_state(a: RepaymentProcess, b: RepaymentProcess) -> None:
    for col in _STATE_COLUMNS:
        np.testing.assert_array_equal(getattr(a.book.state, col), getattr(b.book.state, col),
                                      err_msg=col)


def test_one_advance_equals_daily_steps() -> None:
    scenario = _lazy_scenario()
    horizon = scenario.horizon_days
    eager, daily = _fresh(scenario, 3), _fresh(scenario, 3)
    eager.advance_due(horizon)
    for day in range(-20, int(horizon) + 1):
        daily.advance_due(float(day))
    _assert_same_state(eager, daily)
    s = eager.book.state
    # The run covered the paths that matter: payments, cures, charge-offs, agency money.
    assert (s.status == PAID_ON_TIME).any() and (s.status == CURED).any()
    assert (s.status == CHARGED_OFF).any() and (s.agency_collected > 0).any()
    assert (s.promises_broken > 0).any()


def test_advancing_random_subsets_lazily_changes_nothing() -> None:
    # The engine advances only the accounts it touches, at arbitrary times; untouched
    # accounts catch up later. Any order of partial advances must give the same book.
    scenario = _lazy_scenario()
    horizon = scenario.horizon_days
    eager, lazy = _fresh(scenario, 4), _fresh(scenario, 4)
    eager.advance_due(horizon)
    rng = np.random.default_rng(0)
    n = lazy.book.n
    for t in np.sort(rng.uniform(-20, horizon, 150)):
        subset = np.sort(rng.choice(n, size=rng.integers(1, 300), replace=False))
        lazy.advance(subset.astype(np.int64), float(t))
    lazy.advance_due(horizon)
    _assert_same_state(eager, lazy)
    assert (lazy.book.state.status == DELINQUENT).any() or (
        lazy.book.state.status == CHARGED_OFF).any()


def test_due_one_says_whether_advance_has_work() -> None:
    # An agent's dial asks ``due_one`` before advancing its account; a wrong "no" would
    # dial a borrower whose payment, due date or promise has not been processed.
    scenario = _lazy_scenario()
    process = _fresh(scenario, 5)
    s, due = process.book.state, process.book.observable.due_day
    s.t_promise[1::17] = due[1::17] + 1.0  # each kind of event is the next one somewhere
    s.t_payday[2::17] = due[2::17] + 0.5
    n = process.book.n
    rng = np.random.default_rng(1)
    answers = set()
    for t in np.sort(rng.uniform(-20, scenario.horizon_days, 150)).tolist():
        for i in rng.choice(n, size=40, replace=False).tolist():
            # Processing an event moves that event's clock on: the next-event times change.
            before = [clock[i] for clock in (s.t_boundary, s.t_promise, s.t_payday, s.t_pay)]
            says = process.due_one(i, t)
            process.advance(np.array([i]), t)
            moved = [clock[i] for clock in (s.t_boundary, s.t_promise, s.t_payday,
                                            s.t_pay)] != before
            assert says == moved, (i, t)
            assert not process.due_one(i, t)
            answers.add(says)
    assert answers == {True, False}


def test_common_random_numbers_across_runs() -> None:
    # Same seed, same book, same repayment lives: the no-contact twin is reproducible.
    scenario = _lazy_scenario()
    a, b = _fresh(scenario, 11), _fresh(scenario, 11)
    a.advance_due(200.0)
    b.advance_due(200.0)
    _assert_same_state(a, b)
    c = _fresh(scenario, 12)
    c.advance_due(200.0)
    assert not np.array_equal(a.book.state.t_paid, c.book.state.t_paid)


def test_events_are_recorded_in_time_order_per_account() -> None:
    scenario = _lazy_scenario()
    streams = Streams(6)
    book = generate_book(scenario, streams)
    recorder = Recorder()
    process = RepaymentProcess(book, scenario, streams, recorder)
    process.start()
    process.advance_due(scenario.horizon_days)
    ev = recorder.frame()
    assert len(ev) > 0
    assert (ev["t"] <= scenario.horizon_days).all()
    kinds = set(ev["event"].astype(str))
    assert {"payment", "delinquent", "charge_off"} <= kinds
    # Every account's first delinquency event is at due_day + 1 and it has at most one.
    delinquent = ev[ev["event"] == Event.DELINQUENT.name.lower()]
    assert delinquent["account_id"].is_unique
    due = book.observable.due_day[delinquent["account_id"].to_numpy()]
    np.testing.assert_array_equal(delinquent["t"].to_numpy(), due + 1.0)


def _never_backwards(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make ``RepaymentProcess.decay_to`` fail on a time before an account's own state
    time; returns the list that counts the calls checked."""
    checked: list[int] = []
    original = RepaymentProcess.decay_to

    def decay_to(self: RepaymentProcess, idx: np.ndarray, t: Any) -> None:
        behind = np.asarray(t) < self.book.state.t_state[idx]
        assert not behind.any(), f"accounts {idx[np.broadcast_to(behind, idx.shape)][:5]} " \
                                 "advanced to a time before their own state time"
        checked.append(int(idx.size))
        original(self, idx, t)

    monkeypatch.setattr(RepaymentProcess, "decay_to", decay_to)
    return checked


class _ContactEveryone(Strategy):
    """An SMS at 10:00 to every account in the view, every day."""

    name = "contact_everyone"
    description = "an SMS to every account the view holds"

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        return make_requests(accounts.index.to_numpy(), "sms", 10.0)


@pytest.mark.parametrize("strategy", ["contact_everyone", "fixed_cadence", "early_warning",
                                      "value_based", "bandit", "escalation"])
def test_nothing_moves_an_account_backwards_in_time(monkeypatch: pytest.MonkeyPatch,
                                                     strategy: str) -> None:
    # Statements fall between day -14 and day 16: before its statement an account has no
    # repayment state, so it must not be in the view (a contact then would wind its
    # intensity backwards, the excess growing by exp(kappa dt)). ``contact_everyone``
    # contacts whatever the view holds; the built-ins are checked too.
    monkeypatch.setitem(BUILTINS, _ContactEveryone.name, _ContactEveryone)
    checked = _never_backwards(monkeypatch)
    scenario = scenario_from_dict({"horizon_days": 40, "population": {"size": 800},
                                   "agents": {"count": 2}})
    run(scenario, strategy, seed=3)
    assert sum(checked) > 800  # the check ran on every account's events
    # A living book: accounts current between statements are in the view (a contact
    # finds nothing owed), new accounts enter it when they open, arrears start on day 0.
    checked.clear()
    scenario = scenario_from_dict({
        "horizon_days": 70, "agents": {"count": 2},
        "population": {"size": 800, "billing": {"enabled": True},
                       "arrears": {"M1": 0.05, "M2": 0.05}, "inflow": {"rate_per_day": 0.01}}})
    run(scenario, strategy, seed=3)
    assert sum(checked) > 800


def test_the_view_holds_an_account_only_once_its_statement_is_issued() -> None:
    from simulator.view import build_view

    scenario = scenario_from_dict({"population": {"size": 500}})
    book = generate_book(scenario, Streams(2))
    issued = book.observable.due_day + 1.0 - scenario.population.statement_lead_days
    for day in (0.0, 5.0, 16.0):
        view = build_view(book, day)
        assert (issued[view.index.to_numpy()] <= day).all()
        assert len(view) == int((issued <= day).sum())  # and every such account
