"""The population generator: a reproducible synthetic book (docs/model.md section 2).

Segments emerge from latent traits: a fraud/unreachability trait, ability and
willingness to pay (correlated through a Gaussian copula) and attentiveness. Each
segment is the band of the population where a trait is lowest, taken in a fixed
order, so the segment shares in the scenario are met exactly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from simulator.book import F64, Book, Latent, Observable, SegmentTable, State
from simulator.rng import Streams
from simulator.scenario import CHANNELS, PRODUCTS, SEGMENTS, LogNormal, Scenario


def _lognormal(rng: np.random.Generator, dist: LogNormal, size: int | tuple[int, ...]) -> F64:
    # Parameterised by the mean of the distribution, not of its log.
    mu = np.log(dist.mean) - 0.5 * dist.sigma**2
    return rng.lognormal(mu, dist.sigma, size)


def _counts(shares: list[float], n: int) -> list[int]:
    """Integer counts summing to ``n`` closest to ``shares * n`` (largest remainder)."""
    # Normalised: the scenario lets shares sum to 1 +- 1e-6, which at millions of
    # accounts would leave the floors several accounts short (or over) of ``n``.
    raw = np.array(shares) / np.sum(shares) * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return [int(c) for c in counts]


def _lowest(values: F64, k: int) -> NDArray[np.intp]:
    """Positions of the ``k`` lowest ``values``, ties broken by position: the first ``k``
    of a stable argsort, found by a partition in linear time instead of a sort."""
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    if k >= values.size:
        return np.arange(values.size)
    kth = np.partition(values, k - 1)[k - 1]
    below = np.flatnonzero(values < kth)
    return np.concatenate([below, np.flatnonzero(values == kth)[: k - below.size]])


def assign_segments(
    fraud: F64, ability: F64, willingness: F64, attention: F64, shares: list[float]
) -> NDArray[np.int8]:
    """Assign segments by peeling off the lowest values of one latent trait per segment.

    Order: unreachable (highest fraud trait), hardship (lowest ability), unwilling
    (lowest willingness), cash_flow (lowest ability), self_curer (lowest attention);
    on_time is what remains.
    """
    n = fraud.size
    share = dict(zip(SEGMENTS, _counts(shares, n), strict=True))
    segment = np.full(n, SEGMENTS.index("on_time"), dtype=np.int8)
    free = np.ones(n, dtype=bool)
    peel = [
        ("unreachable", -fraud),
        ("hardship", ability),
        ("unwilling", willingness),
        ("cash_flow", ability),
        ("self_curer", attention),
    ]
    for name, trait in peel:
        candidates = np.flatnonzero(free)
        k = share[name]
        if k == 0:
            continue
        chosen = candidates[_lowest(trait[candidates], k)]
        segment[chosen] = SEGMENTS.index(name)
        free[chosen] = False
    return segment


def generate_book(scenario: Scenario, streams: Streams) -> Book:
    """Draw the book of ``scenario.population.size`` accounts from the population stream."""
    pop = scenario.population
    n = pop.size
    rng = streams.generator("population")
    seg_cfg = [pop.segments[name] for name in SEGMENTS]

    # Latent traits. Ability and willingness through a Gaussian copula.
    rho = pop.ability_willingness_correlation
    z = rng.standard_normal((n, 2))
    ability = z[:, 0]
    willingness = rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    attention = rng.standard_normal(n)
    fraud = rng.random(n)
    segment = assign_segments(fraud, ability, willingness, attention,
                              [s.share for s in seg_cfg])

    def per_segment(dist_of: str) -> F64:
        out = np.empty(n)
        for k, s in enumerate(seg_cfg):
            idx = np.flatnonzero(segment == k)
            out[idx] = _lognormal(rng, getattr(s, dist_of), idx.size)
        return out

    tolerance = per_segment("tolerance")
    complaint = per_segment("complaint_propensity")
    resp_dist = LogNormal(mean=1.0, sigma=pop.responsiveness_sigma)
    responsiveness = _lognormal(rng, resp_dist, (n, len(CHANNELS)))
    answer_mult = np.array([s.answer_multiplier for s in seg_cfg])[segment]
    answer = _lognormal(rng, LogNormal(mean=1.0, sigma=pop.answer_sigma), n) * answer_mult
    clv = _lognormal(rng, pop.clv, n)
    payday_offset = rng.random(n) * scenario.repayment.payday_period_days

    latent = Latent(
        segment=segment, ability=ability, willingness=willingness, tolerance=tolerance,
        complaint_propensity=complaint, responsiveness=responsiveness,
        answer_propensity=answer, clv=clv, payday_offset=payday_offset,
    )

    # Observable columns.
    bad = np.array([s.score_bad for s in seg_cfg])[segment]
    # Binormal score: good and bad are unit-variance normals delta apart, so the AUC
    # between them is Phi(delta / sqrt 2) exactly.
    delta = np.sqrt(2.0) * float(ndtri(pop.score.auc))
    signal = delta * (~bad) + rng.standard_normal(n)
    g = float(np.mean(~bad)) if n else 0.0
    sd = np.sqrt(1.0 + delta**2 * g * (1 - g))
    score = np.clip(pop.score.mean + pop.score.sd * (signal - delta * g) / sd, 300, 900)

    amount_due = np.round(_lognormal(rng, pop.amount_due, n), 2)
    instalments = rng.integers(0, pop.instalments_remaining + 1, n)
    balance = amount_due * (1 + instalments)
    credit_line = np.round(
        balance * rng.uniform(pop.credit_line_multiple.low, pop.credit_line_multiple.high, n), -2
    )
    credit_line = np.maximum(credit_line, np.ceil(balance / 100) * 100)
    tenure = _lognormal(rng, pop.tenure_months, n)
    prior_mean = np.array([s.prior_delinquencies_mean for s in seg_cfg])[segment]
    prior = rng.poisson(prior_mean).astype(np.int16)
    product_shares = [pop.products.get(p, 0.0) for p in PRODUCTS]  # type: ignore[call-overload]
    product = rng.choice(len(PRODUCTS), size=n, p=np.array(product_shares) / sum(product_shares))
    reach = np.array([s.reachability_multiplier for s in seg_cfg])[segment]
    on_file_p = pop.on_file.as_tuple()
    app = rng.random(n) < on_file_p[0] * reach
    email = rng.random(n) < on_file_p[1] * reach
    phone_u = rng.random(n)
    on_file = np.column_stack(
        [app, email] + [phone_u < on_file_p[c] * reach for c in (2, 3, 4)]
    )
    due_day = rng.integers(int(np.ceil(pop.due_day.low)), int(np.floor(pop.due_day.high)) + 1, n)
    dnc = rng.random(n) < pop.do_not_contact_share
    consent = rng.random(n) < pop.consent_share
    clv_estimate = clv * _lognormal(rng, LogNormal(mean=1.0, sigma=pop.clv_estimate_noise), n)

    observable = Observable(
        score=np.round(score), balance=balance, amount_due=amount_due,
        credit_line=credit_line, tenure_months=np.round(tenure, 1), prior_delinquencies=prior,
        product=product.astype(np.int8), on_file=on_file, due_day=due_day.astype(np.float64),
        do_not_contact=dnc, consent_quiet_hours=consent, clv_estimate=np.round(clv_estimate, 2),
    )

    # The statement is issued statement_lead_days before the due date passes.
    statement_date = observable.due_day + 1.0 - pop.statement_lead_days
    return Book(latent=latent, observable=observable, state=initial_state(observable),
                segments=SegmentTable.from_scenario(scenario), opens_at=statement_date)


def initial_state(observable: Observable) -> State:
    """Every account at its statement: owing the amount due, nothing happened yet."""
    state = State(observable.amount_due.size)
    state.owed[:] = observable.amount_due
    state.balance[:] = observable.balance
    return state
