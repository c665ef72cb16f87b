"""The population generator: a reproducible synthetic book (docs/model.md section 2).

Segments emerge from latent traits: a fraud/unreachability trait, ability and
willingness to pay (correlated through a Gaussian copula) and attentiveness. Each
segment is the band of the population where a trait is lowest, taken in a fixed
order, so the segment shares in the scenario are met exactly.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from simulator.book import (
    CURRENT,
    DELINQUENT,
    F64,
    Bills,
    Book,
    Latent,
    Observable,
    Plan,
    SegmentTable,
    State,
    bucket_of_dpd,
)
from simulator.portfolio import OPT_OUT_COLUMNS, read_accounts
from simulator.rng import Streams
from simulator.scenario import BUCKET_NAMES, CHANNELS, PRODUCTS, SEGMENTS, LogNormal, Scenario


def _log_location(mean: F64 | float, sigma: F64 | float) -> F64 | float:
    """The mean of the log of a lognormal whose own mean is ``mean`` (the scenario gives
    lognormals by their mean, not by their log's)."""
    return np.log(mean) - 0.5 * sigma**2


def _lognormal(rng: np.random.Generator, dist: LogNormal, size: int | tuple[int, ...]) -> F64:
    return rng.lognormal(_log_location(dist.mean, dist.sigma), dist.sigma, size)


def _poisson_by_inversion(u: F64, mean: F64) -> F64:
    """Poisson counts of the given means from uniforms ``u`` (the inverse CDF): each
    count moves only with its own uniform and mean. The smallest k whose CDF reaches u,
    found in a table of the CDF for each distinct mean (the means are a segment's, so
    few), which gives scipy's ``poisson.ppf`` exactly, ten times faster at 1M accounts."""
    from scipy.stats import poisson

    counts = np.zeros(u.shape, dtype=np.float64)
    for m in np.unique(mean[mean > 0]):
        rows = mean == m
        top = int(poisson.ppf(float(u[rows].max()), m))  # the largest count needed
        cdf = poisson.cdf(np.arange(max(top, 0) + 1), m)
        counts[rows] = np.searchsorted(cdf, u[rows], side="left")
    return counts


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
    """Draw the book of ``scenario.population.size`` accounts from the population stream;
    in a living book, with accounts in arrears on day 0 (the ``arrears`` stream) and the
    accounts opening over the horizon after them (the ``inflow`` stream). A lender's
    accounts file seeds the book instead with ``population.from_file``
    (``book_from_file``)."""
    pop = scenario.population
    if pop.from_file is not None:
        return book_from_file(scenario, streams)
    latent, observable, instalments = _draw_accounts(scenario, streams.generator("population"),
                                                     pop.size)
    segments = SegmentTable.from_scenario(scenario)
    if not pop.billing.enabled:
        # The statement is issued statement_lead_days before the due date passes.
        statement_date = observable.due_day + 1.0 - pop.statement_lead_days
        return Book(latent=latent, observable=observable, state=initial_state(observable),
                    segments=segments, opens_at=statement_date)
    first_due = observable.due_day.copy()
    statements = (1 + instalments).astype(np.int16)
    past_due0 = np.zeros(pop.size, dtype=np.int16)
    excess0 = np.zeros(pop.size)
    if pop.arrears.any:
        dpd = _draw_arrears(scenario, streams.generator("arrears"), latent, segments)
        _put_in_arrears(scenario, segments, latent, observable, dpd, first_due, statements,
                        past_due0, excess0, history=True)
    return _living_book(scenario, streams, latent, observable, segments, first_due,
                        statements, past_due0, excess0)


def _living_book(scenario: Scenario, streams: Streams, latent: Latent,
                 observable: Observable, segments: SegmentTable, first_due: F64,
                 statements: NDArray[np.int16], past_due0: NDArray[np.int16], excess0: F64
                 ) -> Book:
    """A living book from its day-0 accounts and their plans, with the accounts opening
    over the horizon after them (the ``inflow`` stream; drawn from the scenario's
    population)."""
    pop = scenario.population
    opened = np.full(first_due.size, -np.inf)
    if pop.inflow.rate_per_day > 0:
        rng = streams.generator("inflow")
        count = int(rng.poisson(pop.inflow.rate_per_day * pop.size * scenario.horizon_days))
        new_opened = np.sort(rng.uniform(0.0, scenario.horizon_days, count))
        full = pop.instalments_remaining
        new_latent, new_observable, _ = _draw_accounts(scenario, rng, count, instalments=full,
                                                       opened=new_opened)
        latent = _joined(latent, new_latent)
        observable = _joined(observable, new_observable)
        first_due = np.concatenate([first_due, new_observable.due_day])
        statements = np.concatenate([statements, np.full(count, 1 + full, dtype=np.int16)])
        past_due0 = np.concatenate([past_due0, np.zeros(count, dtype=np.int16)])
        excess0 = np.concatenate([excess0, np.zeros(count)])
        opened = np.concatenate([opened, new_opened])
    plan = Plan(cycle=float(pop.billing.cycle_days), lead=pop.statement_lead_days,
                first_due=first_due, statements=statements, past_due0=past_due0,
                opened=opened, excess0=excess0)
    return Book(latent=latent, observable=observable,
                state=initial_state(observable, plan, scenario.repayment.late_fee),
                segments=segments, opens_at=opened, plan=plan)


def _peeling_traits(scenario: Scenario, rng: np.random.Generator, n: int
                    ) -> tuple[F64, F64, F64, F64]:
    """The latent traits segments are peeled from (``assign_segments``): ability and
    willingness through a Gaussian copula, attention, and the fraud trait; drawn in
    this order, for a drawn book and a lender's book alike."""
    rho = scenario.population.ability_willingness_correlation
    z = rng.standard_normal((n, 2))
    ability = z[:, 0]
    willingness = rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    attention = rng.standard_normal(n)
    fraud = rng.random(n)
    return ability, willingness, attention, fraud


def _draw_accounts(scenario: Scenario, rng: np.random.Generator, n: int,
                   instalments: int | None = None, opened: F64 | None = None
                   ) -> tuple[Latent, Observable, NDArray[np.int64]]:
    """Draw ``n`` accounts: their latent traits, what the lender observes, and how many
    instalments follow the current one (drawn; ``instalments`` for a full plan).

    ``opened`` (new accounts): the day each opens; its first due date is then a cycle
    later (a whole day) and its tenure 0.
    """
    pop = scenario.population
    seg_cfg = [pop.segments[name] for name in SEGMENTS]

    ability, willingness, attention, fraud = _peeling_traits(scenario, rng, n)
    segment = assign_segments(fraud, ability, willingness, attention,
                              [s.share for s in seg_cfg])

    latent = _latent_traits(scenario, rng, segment, ability, willingness)

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
    drawn = rng.integers(0, pop.instalments_remaining + 1, n)
    plan = drawn if instalments is None else np.full(n, instalments, dtype=np.int64)
    balance = amount_due * (1 + plan)
    credit_line = np.round(
        balance * rng.uniform(pop.credit_line_multiple.low, pop.credit_line_multiple.high, n), -2
    )
    credit_line = np.maximum(credit_line, np.ceil(balance / 100) * 100)
    tenure = _lognormal(rng, pop.tenure_months, n) if opened is None else np.zeros(n)
    prior_mean = np.array([s.prior_delinquencies_mean for s in seg_cfg])[segment]
    # By inversion, one uniform per account: numpy's Poisson sampler uses a number of
    # uniforms that depends on the mean, so a change of segment would shift every draw
    # after it (common random numbers across segment shares).
    prior = _poisson_by_inversion(rng.random(n), prior_mean).astype(np.int16)
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
    if opened is not None:  # a new account: its first instalment falls due a cycle later
        due_day = np.floor(opened).astype(np.int64) + pop.billing.cycle_days
    dnc = rng.random(n) < pop.do_not_contact_share
    consent = rng.random(n) < pop.consent_share
    clv_estimate = latent.clv * _lognormal(rng, LogNormal(mean=1.0, sigma=pop.clv_estimate_noise),
                                           n)

    observable = Observable(
        score=np.round(score), balance=balance, amount_due=amount_due,
        credit_line=credit_line, tenure_months=np.round(tenure, 1), prior_delinquencies=prior,
        product=product.astype(np.int8), on_file=on_file, due_day=due_day.astype(np.float64),
        do_not_contact=dnc, consent_quiet_hours=consent, clv_estimate=np.round(clv_estimate, 2),
    )
    return latent, observable, plan


def _latent_traits(scenario: Scenario, rng: np.random.Generator, segment: NDArray[np.int8],
                   ability: F64, willingness: F64) -> Latent:
    """The latent traits drawn once the segments are known (docs/model.md section 2.2):
    tolerance and complaint propensity by segment, responsiveness per channel, answer
    propensity, CLV and payday offset; a drawn book and a lender's book alike."""
    pop = scenario.population
    seg_cfg = [pop.segments[name] for name in SEGMENTS]
    n = segment.size

    def per_segment(dist_of: str) -> F64:
        # One normal per account, in account order, scaled by its segment's lognormal:
        # a draw stays with its account when the segments' sizes change, so that common
        # random numbers hold across segment shares (drawing segment by segment handed
        # every account after the first changed segment another account's draw).
        z = rng.standard_normal(n)
        mean = np.array([getattr(s, dist_of).mean for s in seg_cfg])[segment]
        sigma = np.array([getattr(s, dist_of).sigma for s in seg_cfg])[segment]
        return np.exp(_log_location(mean, sigma) + sigma * z)

    tolerance = per_segment("tolerance")
    complaint = per_segment("complaint_propensity")
    resp_dist = LogNormal(mean=1.0, sigma=pop.responsiveness_sigma)
    responsiveness = _lognormal(rng, resp_dist, (n, len(CHANNELS)))
    answer_mult = np.array([s.answer_multiplier for s in seg_cfg])[segment]
    answer = _lognormal(rng, LogNormal(mean=1.0, sigma=pop.answer_sigma), n) * answer_mult
    clv = _lognormal(rng, pop.clv, n)
    payday_offset = rng.random(n) * scenario.repayment.payday_period_days
    return Latent(
        segment=segment, ability=ability, willingness=willingness, tolerance=tolerance,
        complaint_propensity=complaint, responsiveness=responsiveness,
        answer_propensity=answer, clv=clv, payday_offset=payday_offset,
    )


_T = TypeVar("_T", Latent, Observable)


def _joined(a: _T, b: _T) -> _T:
    """The accounts of ``a`` followed by those of ``b``, column by column. An optional
    column (``None``) given on one side only is zero (false) on the other: a lender's
    accounts have opted out of channels before day 0, drawn accounts have not."""
    sizes = [getattr(x, fields(x)[0].name).shape[0] for x in (a, b)]
    columns: dict[str, Any] = {}
    for f in fields(a):
        parts = [getattr(a, f.name), getattr(b, f.name)]
        given: list[NDArray[Any]] = [x for x in parts if x is not None]
        if not given:
            columns[f.name] = None
            continue
        like: NDArray[Any] = given[0]
        filled: list[NDArray[Any]] = []
        for x, size in zip(parts, sizes, strict=True):
            filled.append(x if x is not None
                          else np.zeros((size, *like.shape[1:]), dtype=like.dtype))
        columns[f.name] = np.concatenate(filled)
    return type(a)(**columns)


def _log_days_unpaid(scenario: Scenario, segments: SegmentTable, max_dpd: int) -> F64:
    """``(segments, max_dpd + 1)``: log of each segment's weight of being ``d`` days past
    due with no contact (docs/model.md section 2.6): no payment in full in the pre-due
    window from ``lambda_0``, nor in the ``d`` days since at ``lambda_inf`` times each
    day's bucket multiplier. Payments in full come at ``full_payment_prob`` times the
    intensity."""
    lead = scenario.population.statement_lead_days
    mult = scenario.repayment.bucket_multiplier
    lam0, lam_inf, kappa = segments.lambda_0, segments.lambda_inf, segments.kappa
    full = segments.full_payment_prob
    safe_kappa = np.where(kappa > 0, kappa, 1.0)
    decay = np.where(kappa > 0, -np.expm1(-safe_kappa * lead) / safe_kappa, lead)
    pre_due = mult["M0"] * (lam_inf * lead + (lam0 - lam_inf) * decay)
    days = np.arange(max_dpd + 1)
    bucket = bucket_of_dpd(days.astype(np.float64))
    per_day = np.array([mult[BUCKET_NAMES[b]] for b in bucket])
    per_day[0] = 0.0
    since = np.cumsum(per_day)  # integrated multiplier over days 1..d
    return -full[:, None] * (pre_due[:, None] + lam_inf[:, None] * since[None, :])


def _draw_arrears(scenario: Scenario, rng: np.random.Generator, latent: Latent,
                  segments: SegmentTable) -> NDArray[np.int64]:
    """Which accounts of the day-0 book are in arrears (``population.arrears``) and how
    many days past due each is (0: not in arrears; docs/model.md section 2.6)."""
    pop, rp = scenario.population, scenario.repayment
    seg = latent.segment
    n = seg.size
    max_dpd = rp.charge_off_dpd - 1
    log_w = _log_days_unpaid(scenario, segments, max_dpd)
    bounds = ((1, 30), (31, 60), (61, 90), (91, max_dpd))
    counts = np.floor(np.array(pop.arrears.shares()) * n + 0.5).astype(np.int64)
    free = np.ones(n, dtype=bool)
    dpd = np.zeros(n, dtype=np.int64)
    for (low, high), k in zip(bounds, counts.tolist(), strict=True):
        k = min(k, int(free.sum()))
        if k <= 0 or high < low:
            continue
        days = np.arange(low, high + 1)
        # Each segment's weight of the bucket, and the days within it given the segment.
        w = log_w[:, low:high + 1]
        top = w.max(axis=1, keepdims=True)
        within = np.exp(w - top)
        log_bucket = top[:, 0] + np.log(within.sum(axis=1))
        # Weighted sampling without replacement: the k first arrivals of exponential
        # clocks of rate w_i (Efraimidis and Spirakis), computed in logs.
        candidates = np.flatnonzero(free)
        # Uniforms for every account, used by the free ones: each keeps its own draw
        # whichever accounts earlier buckets took (common random numbers).
        u = rng.random(n)[candidates]
        arrival = np.log(-np.log(u)) - log_bucket[seg[candidates]]
        chosen = candidates[np.argpartition(arrival, k - 1)[:k]] if k < candidates.size \
            else candidates
        free[chosen] = False
        cdf = np.cumsum(within, axis=1)
        cdf /= cdf[:, -1:]
        pick = rng.random(n)[chosen]
        for s in np.unique(seg[chosen]):
            rows = chosen[seg[chosen] == s]
            at = np.searchsorted(cdf[s], pick[seg[chosen] == s], side="right")
            dpd[rows] = days[np.minimum(at, days.size - 1)]
    return dpd


def _put_in_arrears(scenario: Scenario, segments: SegmentTable, latent: Latent,
                    observable: Observable, dpd: NDArray[np.int64], first_due: F64,
                    statements: NDArray[np.int16], past_due0: NDArray[np.int16],
                    excess0: F64, history: bool) -> None:
    """Put the accounts ``dpd`` days past due on day 0 in arrears: what they owe and the
    intensity their history left (docs/model.md section 2.6). ``statements``: of each
    account, the statements of its plan after those past due. ``history``: the episode
    began before day 0 and counts among the prior delinquencies (a drawn book; a lender's
    file gives its own count). The arrays are changed in place."""
    pop, rp = scenario.population, scenario.repayment
    cycle, lead = pop.billing.cycle_days, pop.statement_lead_days
    seg = latent.segment
    late = np.flatnonzero(dpd > 0)
    if late.size == 0:
        return
    d = dpd[late].astype(np.float64)
    # Statements since the oldest unpaid one (due on day -d) whose due date has passed.
    m = (np.floor((d - 1) / cycle) + 1).astype(np.int16)
    # The next statement was issued by day 0 (if the plan has one).
    open_ = ((-d + m * cycle + 1 - lead) <= 0) & (statements[late] > 0)
    first_due[late] = -d
    statements[late] = m + statements[late]  # the rest of the plan from the next one on
    past_due0[late] = m
    a = observable.amount_due[late]
    # The balance of the plan; the late fees of the missed statements come on top of it
    # (``initial_state``), as a late fee in the run does.
    observable.balance[late] = a * statements[late]
    if history:
        observable.prior_delinquencies[late] += 1
    # The excess left on day 0 by every jump since the oldest statement, nothing paid.
    code = seg[late]
    kappa = segments.kappa[code]
    x = (segments.lambda_0[code] - segments.lambda_inf[code]) * np.exp(-kappa * (d - 1 + lead))
    billed = m + open_
    for j in range(int(m.max())):
        x += np.where(j < m, segments.due_impulse[code] * np.exp(-kappa * (d - 1 - j * cycle)),
                      0.0)
    for j in range(1, int(billed.max())):
        age = d - 1 - j * cycle + lead
        x += np.where(j < billed, segments.statement_impulse[code] * np.exp(-kappa * age), 0.0)
    if rp.bureau_report_dpd is not None:
        reported = d >= rp.bureau_report_dpd
        x += np.where(reported, segments.bureau_impulse[code]
                      * np.exp(-kappa * (d - rp.bureau_report_dpd)), 0.0)
    excess0[late] = x


def initial_state(observable: Observable, plan: Plan | None = None,
                  late_fee: float = 0.0) -> State:
    """Every account at its start, nothing happened yet: at its statement, owing the
    amount due (one statement per account); in a living book, owing nothing before its
    first statement, or (in arrears on day 0) owing every statement since its oldest
    unpaid one."""
    state = State(observable.amount_due.size)
    state.balance[:] = observable.balance
    if observable.opted_out is not None:  # a lender's file: opted out before day 0
        state.opted_out[:] = observable.opted_out
    if plan is None:
        state.owed[:] = observable.amount_due
        return state
    bills = state.bills = Bills(state.n)
    state.status[:] = CURRENT
    bills.ref_due[:] = plan.first_due
    late = np.flatnonzero(plan.past_due0 > 0)
    if late.size:
        a = observable.amount_due[late]
        m = plan.past_due0[late]
        open_ = (plan.issued(late, m) <= 0) & (m < plan.statements[late])
        bills.billed[late] = m + open_
        bills.missed[late] = m
        bills.oldest_left[late] = a + late_fee
        bills.fees[late] = m * late_fee
        bills.t_episode[late] = plan.first_due[late] + 1.0
        state.owed[late] = m * (a + late_fee) + open_ * a
        state.balance[late] += m * late_fee
        state.status[late] = DELINQUENT
        state.t_delinquent[late] = plan.first_due[late] + 1.0
        state.amount_delinquent[late] = m * (a + late_fee)
    return state


def _bad_class(score: F64, auc: float, bad_share: float, count: int,
               rng: np.random.Generator) -> NDArray[np.bool_]:
    """Which accounts are of the bad risk class, drawn given their observed scores.

    The model's score is a binormal signal (docs/model.md section 2.4): good and bad
    borrowers draw unit-variance normals ``delta`` apart, ``delta = sqrt(2) Phi^-1(auc)``.
    The observed score, standardised, is mapped back to that signal, and each account's
    posterior log-odds of being bad is the prior's plus ``delta^2 / 2 - delta * signal``.
    Exactly ``count`` accounts are drawn without replacement with these odds (the Gumbel
    top-k trick), so the segments' shares are met and a low score is a bad risk as often
    as the score's AUC says.
    """
    n = score.size
    if count <= 0:
        return np.zeros(n, dtype=bool)
    if count >= n:
        return np.ones(n, dtype=bool)
    delta = np.sqrt(2.0) * float(ndtri(auc))
    g = 1.0 - bad_share
    spread = float(np.std(score))
    z = (score - float(np.mean(score))) / spread if spread > 0 else np.zeros(n)
    signal = z * np.sqrt(1.0 + delta**2 * g * (1 - g)) + delta * g
    prior = np.log(bad_share / (1.0 - bad_share)) if 0 < bad_share < 1 else 0.0
    key = prior + delta**2 / 2 - delta * signal + rng.gumbel(size=n)
    bad = np.zeros(n, dtype=bool)
    bad[np.argpartition(-key, count - 1)[:count]] = True
    return bad


def book_from_file(scenario: Scenario, streams: Streams) -> Book:
    """The book seeded from a lender's accounts file (``population.from_file``).

    Observables are taken as given: score, balance, amount due, credit line, tenure,
    prior delinquencies, product, the channels on file and opted out of, the
    do-not-contact flag. ``population.size`` accounts are drawn from the file with
    replacement (from the population stream), unless it equals the file's number of
    accounts: then each account is taken once, in the file's order. An account
    ``dpd`` days past due at the snapshot is due on day ``-dpd``; the others' due days
    are drawn from ``population.due_day``. Latent traits are drawn given the
    observables: the risk class from the score (``_bad_class``), then each class's
    segments from fresh latent traits as in ``generate_book``, so every segment's share
    is met exactly and the score keeps its discriminating power.
    """
    pop = scenario.population
    assert pop.from_file is not None
    accounts = read_accounts(pop.from_file)
    m, n = len(accounts), pop.size
    rng = streams.generator("population")
    rows = np.arange(m) if n == m else rng.integers(0, m, n)
    a = accounts.iloc[rows].reset_index(drop=True)
    seg_cfg = [pop.segments[name] for name in SEGMENTS]
    shares = [s.share for s in seg_cfg]
    counts = _counts(shares, n)
    bad_segment = np.array([s.score_bad for s in seg_cfg])
    score = a["score"].to_numpy(dtype=float)
    bad_count = int(sum(c for c, b in zip(counts, bad_segment, strict=True) if b))
    bad = _bad_class(score, pop.score.auc, float(sum(np.array(shares)[bad_segment])),
                     bad_count, rng)

    ability, willingness, attention, fraud = _peeling_traits(scenario, rng, n)
    segment = np.empty(n, dtype=np.int8)
    for group, in_class in ((bad, True), (~bad, False)):
        idx = np.flatnonzero(group)
        class_shares = [float(c) if b == in_class else 0.0
                        for c, b in zip(counts, bad_segment, strict=True)]
        if idx.size == 0:
            continue
        if sum(class_shares) == 0:  # no segment of this class: the other class's rest
            class_shares = [1.0 if name == "on_time" else 0.0 for name in SEGMENTS]
        segment[idx] = assign_segments(fraud[idx], ability[idx], willingness[idx],
                                       attention[idx], [float(x) for x in class_shares])

    latent = _latent_traits(scenario, rng, segment, ability, willingness)

    dpd = a["dpd"].to_numpy(dtype=np.int64)
    drawn = rng.integers(int(np.ceil(pop.due_day.low)), int(np.floor(pop.due_day.high)) + 1, n)
    due_day = np.where(dpd > 0, -dpd, drawn).astype(np.float64)
    phone = a["on_file_phone"].to_numpy(dtype=bool)
    on_file = np.column_stack([a["on_file_push"].to_numpy(dtype=bool),
                               a["on_file_email"].to_numpy(dtype=bool), phone, phone, phone])
    opted_out = np.zeros((n, len(CHANNELS)), dtype=bool)
    for column, channel in zip(OPT_OUT_COLUMNS, ("push", "email", "sms"), strict=True):
        opted_out[:, CHANNELS.index(channel)] = a[column].to_numpy(dtype=bool)
    consent = rng.random(n) < pop.consent_share
    clv_estimate = latent.clv * _lognormal(rng, LogNormal(mean=1.0, sigma=pop.clv_estimate_noise),
                                           n)
    amount_due = np.array(a["amount_due"], dtype=float)  # a copy: a living book rewrites it
    balance = np.maximum(a["balance"].to_numpy(dtype=float), amount_due)
    observable = Observable(
        score=score, balance=balance, amount_due=amount_due,
        credit_line=a["credit_line"].to_numpy(dtype=float),
        tenure_months=a["tenure_months"].to_numpy(dtype=float),
        prior_delinquencies=a["prior_delinquencies"].to_numpy().astype(np.int16),
        product=np.array([PRODUCTS.index(str(x)) for x in a["product"]], dtype=np.int8),
        on_file=on_file, due_day=due_day, do_not_contact=a["do_not_contact"].to_numpy(
            dtype=bool), consent_quiet_hours=consent, clv_estimate=np.round(clv_estimate, 2),
        opted_out=opted_out,
    )
    segments = SegmentTable.from_scenario(scenario)
    if pop.billing.enabled:
        return _lenders_living_book(scenario, streams, latent, observable, segments, dpd)
    # As a drawn book's: an account is open from its statement, issued before its due date.
    statement_date = observable.due_day + 1.0 - pop.statement_lead_days
    return Book(latent=latent, observable=observable, state=initial_state(observable),
                segments=segments, opens_at=statement_date)


#: The longest plan a lender's account is given (statements), whatever its balance.
MAX_PLAN_STATEMENTS = 1200


def _lenders_living_book(scenario: Scenario, streams: Streams, latent: Latent,
                         observable: Observable, segments: SegmentTable,
                         dpd: NDArray[np.int64]) -> Book:
    """A lender's accounts as a living book (docs/model.md section 2.8): an account
    ``dpd`` days past due has missed the ``floor((dpd - 1) / cycle) + 1`` statements due
    since day ``-dpd`` and its ``amount_due`` (the file's amount past due) is that many
    instalments; its plan is ``round(balance / instalment)`` instalments in all (at least
    one, and at least those past due). ``observable`` is changed in place: its amount due
    becomes the instalment and its balance the plan's."""
    cycle = scenario.population.billing.cycle_days
    m = np.where(dpd > 0, np.floor((dpd - 1) / cycle) + 1, 0).astype(np.int64)
    instalment = observable.amount_due / np.maximum(m, 1)
    has = instalment > 0
    total = np.where(has, np.rint(observable.balance / np.where(has, instalment, 1.0)), 1.0)
    total = np.clip(total, np.maximum(m, 1), MAX_PLAN_STATEMENTS).astype(np.int64)
    observable.amount_due[:] = instalment
    observable.balance[:] = instalment * total
    n = dpd.size
    first_due = observable.due_day.copy()
    statements = (total - m).astype(np.int16)  # after those past due (all of them if none)
    past_due0 = np.zeros(n, dtype=np.int16)
    excess0 = np.zeros(n)
    _put_in_arrears(scenario, segments, latent, observable, dpd, first_due, statements,
                    past_due0, excess0, history=False)
    return _living_book(scenario, streams, latent, observable, segments, first_due,
                        statements, past_due0, excess0)
