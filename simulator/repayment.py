"""Repayment as a controlled self-exciting (Hawkes) process (docs/model.md sections 3-4).

Each borrower's intensity ``m(t) (lambda_inf + excess(t))`` relaxes exponentially
towards ``m lambda_inf`` (from above, or from below when it starts below ``lambda_inf``)
and jumps on payments, on attended contacts, on the due date passing, on the bureau
report and on paydays; ``m`` is the delinquency bucket's (or the agency's) multiplier.
Because the kernel is exponential, the next event time is drawn exactly in O(1); a jump
simply redraws it. Borrowers never interact between touches, so a borrower's events are
processed lazily, vectorised over borrowers, whenever the engine needs the book at a
later time (a decision epoch, a contact): the result is the same as one pending
wake-up per borrower, without a heap entry per borrower.
"""

from __future__ import annotations

import numpy as np
from scipy.special import lambertw

from simulator.book import (
    BOOL,
    CHARGED_OFF,
    CURED,
    DELINQUENT,
    F64,
    I64,
    PAID_ON_TIME,
    PRE_DUE,
    Book,
    bucket_of_dpd,
)
from simulator.recorder import (
    PAY_AGENCY,
    PAY_DELINQUENT,
    PAY_PRE_DUE,
    Event,
    Recorder,
)
from simulator.rng import Streams
from simulator.scenario import BUCKET_NAMES, Scenario

CENT = 0.005  # what is left below half a cent counts as paid

# By status code: a payment's stage (its event code), and the status once paid in full.
# One lookup costs what one of the comparisons it replaces does.
_PAY_STAGE = np.full(CHARGED_OFF + 1, PAY_DELINQUENT, dtype=np.int64)
_PAY_STAGE[PRE_DUE], _PAY_STAGE[CHARGED_OFF] = PAY_PRE_DUE, PAY_AGENCY
_STATUS_PAID = np.arange(CHARGED_OFF + 1, dtype=np.int8)
_STATUS_PAID[PRE_DUE], _STATUS_PAID[DELINQUENT] = PAID_ON_TIME, CURED


def next_event_delay(lam_inf: F64, excess: F64, kappa: F64, u1: F64, u2: F64) -> F64:
    """Exact time to the next event of an intensity ``lam_inf + excess * exp(-kappa s)``.

    ``lam_inf`` and ``excess`` are the bucket multiplier's share of them (see
    ``RepaymentProcess.redraw``); the intensity is never negative
    (``lam_inf + excess >= 0``), so its integral ``Lambda(s) = lam_inf s +
    excess (1 - exp(-kappa s)) / kappa`` is non-decreasing and the delay is where it
    reaches an Exp(1) variable, by inversion.

    * A positive excess: the event is the first of two independent clocks, a Poisson
      clock at rate ``lam_inf`` (``-ln u1 / lam_inf``) and the excess clock, whose
      integrated intensity ``excess (1 - exp(-kappa s)) / kappa`` reaches ``-ln u2`` at
      ``s = -ln(1 + kappa ln u2 / excess) / kappa`` (never, when the log argument is not
      positive: the excess decays away first).
    * A negative excess (a start intensity below ``lambda_inf``: the intensity rises
      towards ``lam_inf``) cannot be a clock of its own, so ``Lambda(s) = E`` with
      ``E = -ln u1`` is solved directly. Writing ``c = (E - excess / kappa) / lam_inf``
      and ``s = c + w / kappa`` turns it into ``w e^w = z`` with
      ``z = (excess / lam_inf) exp((excess - kappa E) / lam_inf)`` in ``[-1/e, 0)``,
      whose root with ``s >= 0`` is the principal branch of the Lambert W function:
      ``s = c + W0(z) / kappa``. A closed form (``scipy.special.lambertw``, vectorised,
      accurate to a few ulps away from the branch point ``z = -1/e`` and to ~1e-14 days
      at it), so no iteration and no tolerance; ``u2`` is not used. With ``kappa = 0``
      the intensity is the constant ``lam_inf + excess``.

    A zero excess gives the Poisson clock alone; results for ``excess >= 0`` are those
    of the two clocks, bit for bit.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t1 = np.where(lam_inf > 0, -np.log(u1) / lam_inf, np.inf)
        safe_kappa = np.where(kappa > 0, kappa, 1.0)
        arg = 1.0 + kappa * np.log(u2) / excess
        t2_decay = np.where(arg > 0, -np.log(arg) / safe_kappa, np.inf)
        t2_flat = -np.log(u2) / excess  # kappa == 0: the excess never decays
        t2 = np.where(kappa > 0, t2_decay, t2_flat)
        t2 = np.where(excess > 0, t2, np.inf)
    delay = np.minimum(t1, t2)
    rising = excess < 0
    if np.any(rising):
        delay = np.asarray(delay, dtype=np.float64)
        lam_b, excess_b, kappa_b, u1_b = np.broadcast_arrays(lam_inf, excess, kappa, u1)
        delay[rising] = _rising_delay(lam_b, excess_b, kappa_b, u1_b, rising)
    return delay


def _rising_delay(lam_inf: F64, excess: F64, kappa: F64, u1: F64, rows: BOOL) -> F64:
    """``next_event_delay`` of the ``rows`` whose excess is negative (Lambert W)."""
    lam, x, k = lam_inf[rows], excess[rows], kappa[rows]
    e = -np.log(u1[rows])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        safe_lam = np.where(lam > 0, lam, 1.0)
        safe_k = np.where(k > 0, k, 1.0)
        # Rounding can put z a hair below -1/e, off the real branch: clamp it there.
        z = np.maximum((x / safe_lam) * np.exp((x - safe_k * e) / safe_lam), -np.exp(-1.0))
        s = (e - x / safe_k) / safe_lam + lambertw(z).real / safe_k
        flat = lam + x  # kappa == 0: the rate never changes
        s_flat = np.where(flat > 0, e / flat, np.inf)
    s = np.where(k > 0, np.maximum(s, 0.0), s_flat)
    return np.where(lam > 0, s, np.inf)


class RepaymentProcess:
    """Advances borrowers' repayment lives exactly, in vectorised batches."""

    def __init__(self, book: Book, scenario: Scenario, streams: Streams, recorder: Recorder):
        self.book = book
        self.recorder = recorder
        self.time_stream = streams.borrower_stream("repayment_time")
        self.amount_stream = streams.borrower_stream("repayment_amount")
        rp = scenario.repayment
        self.bucket_mult = np.array([rp.bucket_multiplier[b] for b in BUCKET_NAMES])
        self.agency_mult = rp.bucket_multiplier["agency"] if scenario.agency.enabled else 0.0
        self.late_fee = rp.late_fee
        self.charge_off_dpd = rp.charge_off_dpd
        self.payday_period = rp.payday_period_days
        self.statement_lead = scenario.population.statement_lead_days
        self.bureau_dpd = rp.bureau_report_dpd
        self.full_covers_fees = scenario.promises.full_covers_fees
        marks = {31, 61, 91} | ({rp.bureau_report_dpd} if rp.bureau_report_dpd else set())
        cut = sorted(d for d in marks if d < rp.charge_off_dpd)
        self._boundaries = np.array([*cut, rp.charge_off_dpd], dtype=np.float64)

    # ------------------------------------------------------------------ set-up

    def start(self) -> None:
        """Put every borrower at its statement date with its segment's initial intensity."""
        b, s, seg = self.book, self.book.state, self.book.segments
        code = b.latent.segment
        t0 = b.observable.due_day + 1.0 - self.statement_lead
        s.t_state[:] = t0
        # Negative when lambda_0 < lambda_inf: the intensity then rises towards lambda_inf.
        s.excess[:] = seg.lambda_0[code] - seg.lambda_inf[code]
        s.t_boundary[:] = b.observable.due_day + 1.0  # the due date passes at end of day
        has_payday = seg.payday_impulse[code] > 0
        # First payday on or after the statement date.
        k = np.ceil((t0 - b.latent.payday_offset) / self.payday_period)
        s.t_payday[:] = np.where(has_payday, b.latent.payday_offset + k * self.payday_period,
                                 np.inf)
        self.redraw(np.arange(b.n, dtype=np.int64), t0)

    # ------------------------------------------------------------------ core

    def multiplier(self, idx: I64, t: F64 | float) -> F64:
        """The multiplier of the whole intensity of ``idx`` at time ``t``: its bucket's,
        the agency's once charged off, 0 once nothing is owed.

        It scales the long-run level and the excess together (``redraw``); the excess is
        stored unscaled, so at a bucket boundary the intensity changes by the ratio of
        the two buckets' multipliers and the excess carries over at its own size.
        """
        s = self.book.state
        st = s.status[idx]
        dpd = np.floor(t - self.book.observable.due_day[idx])
        m = self.bucket_mult[bucket_of_dpd(dpd)]
        m = np.where(st == CHARGED_OFF, self.agency_mult, m)
        return np.where((st == PAID_ON_TIME) | (st == CURED) | (s.owed[idx] <= 0), 0.0, m)

    def decay_to(self, idx: I64, t: F64 | float) -> None:
        """Bring the excess intensity of ``idx`` forward to time ``t``."""
        s = self.book.state
        kappa = self.book.segments.kappa[self.book.latent.segment[idx]]
        s.excess[idx] *= np.exp(-kappa * (t - s.t_state[idx]))
        s.t_state[idx] = t

    def redraw(self, idx: I64, t: F64 | float) -> None:
        """Draw the next repayment time of ``idx`` from its state at time ``t``.

        The intensity is ``m(t) * (lambda_inf + excess(t))``: ``m`` the ``multiplier``
        (piecewise constant: it changes only at a boundary, charge-off or full payment,
        each of which redraws), ``excess`` the sum of every jump so far (payments, the
        due date, paydays, the bureau report, contacts), unscaled, each decaying at
        ``kappa``. Between two redraws ``m`` is constant, so the draw is exact.
        """
        if idx.size == 0:
            return
        s, seg = self.book.state, self.book.segments
        code = self.book.latent.segment[idx]
        mult = self.multiplier(idx, t)
        u = self.time_stream.uniforms(idx, s.repay_counter[idx], 2)
        s.repay_counter[idx] += 1
        lam = seg.lambda_inf[code] * mult
        excess = s.excess[idx] * mult
        s.t_pay[idx] = t + next_event_delay(lam, excess, seg.kappa[code], u[:, 0], u[:, 1])

    def jump(self, idx: I64, t: float, size: F64) -> None:
        """Add ``size`` to the intensity of ``idx`` at time ``t`` and redraw."""
        self.decay_to(idx, t)
        self.book.state.excess[idx] += size
        self.redraw(idx, t)

    def advance_due(self, t: float, accounts: slice | None = None) -> None:
        """``advance`` every account (of the slice ``accounts`` of the book, if given) with
        an event at or before ``t`` (one pass over the book finds them)."""
        s = self.book.state
        part = slice(None) if accounts is None else accounts
        nxt = np.minimum(np.minimum(s.t_pay[part], s.t_boundary[part]),
                         np.minimum(s.t_payday[part], s.t_promise[part]))
        self.advance(np.flatnonzero(nxt <= t) + part.indices(self.book.n)[0], t)

    def due_one(self, i: int, t: float) -> bool:
        """Has account ``i`` an event at or before ``t`` (that ``advance`` would process)?"""
        s = self.book.state
        return min(s.t_boundary.item(i), s.t_promise.item(i), s.t_payday.item(i),
                   s.t_pay.item(i)) <= t

    def advance(self, idx: I64, t: float) -> None:
        """Process every event of the accounts ``idx`` that falls at or before ``t``."""
        s = self.book.state
        while idx.size:
            tb, tpr, tpd, tp = s.t_boundary[idx], s.t_promise[idx], s.t_payday[idx], s.t_pay[idx]
            tn = np.minimum(np.minimum(tb, tpr), np.minimum(tpd, tp))
            due = tn <= t
            if not due.all():
                idx, tn = idx[due], tn[due]
                tb, tpr, tpd = tb[due], tpr[due], tpd[due]
            if idx.size == 0:
                return
            # On ties the boundary goes first, then a promise date, a payday, a payment.
            is_b = tb == tn
            is_pr = ~is_b & (tpr == tn)
            is_pd = ~is_b & ~is_pr & (tpd == tn)
            is_p = ~(is_b | is_pr | is_pd)
            if is_b.any():
                self._on_boundary(idx[is_b], tn[is_b])
            if is_pr.any():
                self._on_promise_date(idx[is_pr], tn[is_pr])
            if is_pd.any():
                self._on_payday(idx[is_pd], tn[is_pd])
            if is_p.any():
                self._on_payment(idx[is_p], tn[is_p])

    # ------------------------------------------------------------------ events

    def _on_boundary(self, idx: I64, t: F64) -> None:
        s, b = self.book.state, self.book
        self.decay_to(idx, t)
        due = b.observable.due_day[idx]
        st = s.status[idx]

        pre = st == PRE_DUE
        if pre.any():
            i = idx[pre]
            s.status[i] = DELINQUENT
            s.owed[i] += self.late_fee
            s.balance[i] += self.late_fee
            s.amount_delinquent[i] = s.owed[i]
            s.t_delinquent[i] = t[pre]
            s.excess[i] += b.segments.due_impulse[b.latent.segment[i]]
            self.recorder.add(Event.DELINQUENT, t[pre], i, amount=s.owed[i])

        # Next boundary strictly after t: bureau reporting, the next bucket, or charge-off.
        dpd_now = t - due
        if self.bureau_dpd is not None:
            # The status now, not ``st``: with bureau_report_dpd = 1 the report falls on the
            # boundary that has just made the account delinquent.
            report = (s.status[idx] == DELINQUENT) & (dpd_now == self.bureau_dpd)
            i = idx[report]
            s.excess[i] += b.segments.bureau_impulse[b.latent.segment[i]]
        nxt = self._boundaries[np.searchsorted(self._boundaries, dpd_now, side="right").clip(
            max=self._boundaries.size - 1)]
        charge = (st == DELINQUENT) & (dpd_now >= self.charge_off_dpd)
        s.t_boundary[idx] = np.where(charge, np.inf, due + nxt)
        if charge.any():
            i = idx[charge]
            s.status[i] = CHARGED_OFF
            s.t_charged_off[i] = t[charge]
            # The whole balance is written off and the whole debt is now due: the agency
            # collects towards it (never more), not only towards the amount past due.
            s.written_off[i] = s.balance[i]
            s.owed[i] = s.written_off[i]
            s.balance[i] = 0.0
            s.t_promise[i] = np.inf  # in-house promises end with in-house collection
            self.recorder.add(Event.CHARGE_OFF, t[charge], i, amount=s.written_off[i])
        self.redraw(idx, t)

    def _on_payday(self, idx: I64, t: F64) -> None:
        s, b = self.book.state, self.book
        self.decay_to(idx, t)
        s.excess[idx] += b.segments.payday_impulse[b.latent.segment[idx]]
        s.t_payday[idx] = t + self.payday_period
        self.redraw(idx, t)

    def _covers_all(self, idx: I64) -> BOOL:
        """Open promises of ``idx`` that are kept only by paying all that is owed: promises
        to pay in full, late fees added since included (``promises.full_covers_fees``)."""
        return self.book.state.promise_full[idx] & self.full_covers_fees

    def _on_promise_date(self, idx: I64, t: F64) -> None:
        """An open promise falls due unmet: the borrower pays the rest, or breaks it.

        A kept promise to pay in full pays what is owed on the promised date, a late fee
        added since it was made included (unless ``promises.full_covers_fees`` is false:
        then it pays the amount promised and the fee stays owed); a kept partial promise
        pays the rest of the amount promised.
        """
        s = self.book.state
        s.t_promise[idx] = np.inf
        kept = s.promise_kept[idx]
        broken = idx[~kept]
        s.promises_broken[broken] += 1
        self.recorder.add(Event.PROMISE_BROKEN, t[~kept], broken)
        if kept.any():
            i = idx[kept]
            s.t_promise[i] = t[kept]  # still open while the promised payment is made
            rest = np.where(self._covers_all(i), s.owed[i], s.promise_amount[i] - s.promise_paid[i])
            self._on_payment(i, t[kept], amount=rest)

    def _payment(self, idx: I64, code: np.ndarray, owed: F64,
                 amount: F64 | None) -> tuple[F64, F64]:
        """(share, amount) each account in ``idx`` pays of ``owed``: ``amount`` (a promise
        kept), else in full with the segment's ``full_payment_prob`` or a uniform share
        between its partial bounds (section 3.2); a remainder under a cent is paid with
        it. The jump of the intensity follows the share drawn (section 3.2)."""
        if amount is None:
            s, seg = self.book.state, self.book.segments
            u = self.amount_stream.uniforms(idx, s.repay_counter[idx], 2)
            s.repay_counter[idx] += 1
            full = u[:, 0] < seg.full_payment_prob[code]
            lo, hi = seg.partial_low[code], seg.partial_high[code]
            frac = np.where(full, 1.0, lo + (hi - lo) * u[:, 1])
        else:
            frac = np.minimum(amount / owed, 1.0)
        paid = frac * owed
        return frac, np.where(owed - paid < CENT, owed, paid)

    def _on_payment(self, idx: I64, t: F64, amount: F64 | None = None) -> None:
        s, b = self.book.state, self.book
        seg = b.segments
        code = b.latent.segment[idx]
        self.decay_to(idx, t)
        owed = s.owed[idx]
        frac, paid = self._payment(idx, code, owed, amount)
        st = s.status[idx]
        s.owed[idx] = owed - paid
        in_house = st != CHARGED_OFF
        paid_in_house = np.where(in_house, paid, 0.0)
        s.balance[idx] -= paid_in_house
        s.paid_in_house[idx] += paid_in_house
        s.paid_delinquent[idx] += np.where(st == DELINQUENT, paid, 0.0)
        s.agency_collected[idx] += np.where(in_house, 0.0, paid)
        s.paid_before_start[idx] += np.where(t < 0, paid, 0.0)
        s.excess[idx] += seg.delta10[code] + seg.delta11[code] * frac
        self.recorder.add(Event.PAYMENT, t, idx, amount=paid, code=_PAY_STAGE[st])

        # A promise is kept once what was paid since it was made covers the amount (a
        # promise to pay in full: all that is owed, see ``_covers_all``), or once the
        # debt is paid in full.
        done = s.owed[idx] <= 0
        open_ = np.isfinite(s.t_promise[idx])
        s.promise_paid[idx] += np.where(open_, paid, 0.0)
        covered = (s.promise_paid[idx] >= s.promise_amount[idx] - CENT) & ~self._covers_all(idx)
        met = open_ & (covered | done)
        if met.any():
            i = idx[met]
            s.t_promise[i] = np.inf
            self.recorder.add(Event.PROMISE_KEPT, t[met], i, amount=s.promise_amount[i])

        if done.any():
            i = idx[done]
            s.owed[i] = 0.0
            st_done = s.status[i]
            s.status[i] = _STATUS_PAID[st_done]
            s.t_paid[i] = np.where(st_done == CHARGED_OFF, s.t_paid[i], t[done])
            for arr in (s.t_pay, s.t_boundary, s.t_payday, s.t_promise):
                arr[i] = np.inf
        self.redraw(idx[~done], t[~done])
