"""Monthly statements: the repayment process of a living book (docs/model.md section 2.5).

The intensity, its jumps and the exact next-event law are those of
``simulator.repayment``; what a living book adds is the statement as one more event of
the lazy advance (each account's next statement is one more pending time, like its due
date and its paydays, so nothing is polled daily) and the statements' money: what each
account owes is the unpaid part of every statement issued so far, paid oldest first, and
days past due count from the oldest unpaid due date.

Every instalment of an account is the same amount, so with payments going to the oldest
statement first only the oldest unpaid one can be partly paid: a few integers and one
amount per account (``simulator.book.Bills``) hold its statements, vectorised over
accounts, with no loop over accounts.
"""

from __future__ import annotations

import numpy as np

from simulator.book import (
    CHARGED_OFF,
    CURED,
    CURRENT,
    DELINQUENT,
    EPISODE_WINDOWS,
    F64,
    I64,
    PAID_ON_TIME,
    PRE_DUE,
    Bills,
    Book,
    Plan,
    bucket_of_dpd,
)
from simulator.recorder import PAY_AGENCY, PAY_DELINQUENT, PAY_PRE_DUE, Event, Recorder
from simulator.repayment import CENT, RepaymentProcess
from simulator.rng import Streams
from simulator.scenario import Scenario

# A payment's stage (its event code) by status code; an account owing nothing never pays.
_PAY_STAGE = np.full(CURRENT + 1, PAY_DELINQUENT, dtype=np.int64)
_PAY_STAGE[[PRE_DUE, CURRENT]] = PAY_PRE_DUE
_PAY_STAGE[CHARGED_OFF] = PAY_AGENCY


class BilledRepayment(RepaymentProcess):
    """The repayment process of a living book: statements every cycle, paid oldest first.

    Besides the state of ``RepaymentProcess`` it keeps, per account, its statements
    (``Book.state.bills``) and the counters the KPIs of a living book read: statements
    falling due and missed, delinquency episodes and cures, amounts falling past due and
    collected, each counted only after the warm-up (``metrics.warmup_days``).
    """

    def __init__(self, book: Book, scenario: Scenario, streams: Streams, recorder: Recorder):
        super().__init__(book, scenario, streams, recorder)
        if book.plan is None or book.state.bills is None:
            raise ValueError("a living book needs each account's plan and statements")
        self.plan: Plan = book.plan
        rp = scenario.repayment
        # Days past due of the oldest unpaid statement at which something happens: it
        # falls due (1), 30 and 60 days past due (roll_30_60, and the cures from 30 or
        # more days past due), the bureau report, a new bucket, charge-off.
        marks = {1, 30, 31, 60, 61, 91} | ({rp.bureau_report_dpd} if rp.bureau_report_dpd
                                           else set())
        self._marks = np.array([*sorted(d for d in marks if d < rp.charge_off_dpd),
                                rp.charge_off_dpd], dtype=np.float64)
        self.warmup = scenario.metrics.warmup_days
        self.horizon = scenario.horizon_days
        self._windows = np.array(EPISODE_WINDOWS)
        self._next: F64 | None = None  # scratch of ``advance_due``

    @property
    def bills(self) -> Bills:
        bills = self.book.state.bills
        assert bills is not None
        return bills

    # ------------------------------------------------------------------ set-up

    def start(self) -> None:
        """Every account at the start of its repayment life: at its first statement (which
        may fall before day 0, or after: no state before it), or, in arrears on day 0,
        on day 0 with its statements past due and the excess its history left."""
        b, s, plan, bills = self.book, self.book.state, self.plan, self.bills
        everyone = np.arange(b.n, dtype=np.int64)
        late = plan.past_due0 > 0
        first = plan.issued(everyone, np.zeros(b.n, dtype=np.int64))
        bills.t_statement[:] = np.where(late, np.inf, first)
        s.t_state[:] = np.where(late, 0.0, first)
        i = np.flatnonzero(late)
        if i.size == 0:
            return
        s.excess[i] = plan.excess0[i]
        billed = bills.billed[i].astype(np.int64)
        bills.t_statement[i] = np.where(billed < plan.statements[i], plan.issued(i, billed),
                                        np.inf)
        s.t_boundary[i] = self._next_boundary(i, np.zeros(i.size))
        s.t_payday[i] = self._first_payday(i, np.zeros(i.size))
        self.redraw(i, 0.0)

    def record_paid_times(self, width: int) -> None:
        """Record when each of the first ``width`` statements of every account is paid in
        full (the no-contact twin's, for wasted contacts)."""
        self.bills.paid_at = np.full((self.book.n, width), np.inf, dtype=np.float32)

    def _first_payday(self, idx: I64, t: F64) -> F64:
        """The first payday at or after ``t`` of each account with a payday impulse."""
        b = self.book
        offset = b.latent.payday_offset[idx]
        k = np.ceil((t - offset) / self.payday_period)
        has = b.segments.payday_impulse[b.latent.segment[idx]] > 0
        return np.where(has, offset + k * self.payday_period, np.inf)

    def _next_boundary(self, idx: I64, t: F64) -> F64:
        """The next boundary strictly after ``t`` of owing accounts ``idx``: the open
        statement falling due, or the next mark of the oldest unpaid one."""
        bills, plan = self.bills, self.plan
        ref = bills.ref_due[idx]
        k = np.searchsorted(self._marks, t - ref, side="right")
        nxt = np.where(k < self._marks.size,
                       ref + self._marks[np.minimum(k, self._marks.size - 1)], np.inf)
        billed = bills.billed[idx].astype(np.int64)
        open_ = bills.missed[idx] < billed - bills.oldest[idx]
        return np.where(open_, np.minimum(nxt, plan.due(idx, billed - 1) + 1.0), nxt)

    # ------------------------------------------------------------------ core

    def multiplier(self, idx: I64, t: F64 | float) -> F64:
        """As ``RepaymentProcess.multiplier``, days past due counted from the oldest unpaid
        due date, and 0 for an account that owes nothing until its next statement."""
        s = self.book.state
        st = s.status[idx]
        m = self.bucket_mult[bucket_of_dpd(np.floor(t - self.bills.ref_due[idx]))]
        m = np.where(st == CHARGED_OFF, self.agency_mult, m)
        idle = (st == PAID_ON_TIME) | (st == CURED) | (st == CURRENT) | (s.owed[idx] <= 0)
        return np.where(idle, 0.0, m)

    def advance_due(self, t: float, accounts: slice | None = None) -> None:
        s, n = self.book.state, self.book.n
        if accounts is not None:  # a slice of the book: small arrays of its own
            first = accounts.indices(n)[0]
            nxt = np.minimum(s.t_pay[accounts], s.t_boundary[accounts])
            np.minimum(nxt, s.t_payday[accounts], out=nxt)
            np.minimum(nxt, s.t_promise[accounts], out=nxt)
            np.minimum(nxt, self.bills.t_statement[accounts], out=nxt)
            self.advance(np.flatnonzero(nxt <= t) + first, t)
            return
        # Each account's next event, the earliest of its five clocks, in one scratch
        # array kept between calls: a pass over millions of accounts at every epoch
        # would otherwise allocate (and fault in) four arrays of the book's length.
        if self._next is None or self._next.size != n:
            self._next = np.empty(n)
        nxt = self._next
        np.minimum(s.t_pay, s.t_boundary, out=nxt)
        np.minimum(nxt, s.t_payday, out=nxt)
        np.minimum(nxt, s.t_promise, out=nxt)
        np.minimum(nxt, self.bills.t_statement, out=nxt)
        self.advance(np.flatnonzero(nxt <= t), t)

    def due_one(self, i: int, t: float) -> bool:
        s = self.book.state
        return min(s.t_boundary.item(i), self.bills.t_statement.item(i), s.t_promise.item(i),
                   s.t_payday.item(i), s.t_pay.item(i)) <= t

    def advance(self, idx: I64, t: float) -> None:
        """Process every event of the accounts ``idx`` that falls at or before ``t``; on
        ties the boundary goes first, then the statement, a promise date, a payday, a
        payment."""
        s, bills = self.book.state, self.bills
        while idx.size:
            tb, tst = s.t_boundary[idx], bills.t_statement[idx]
            tpr, tpd, tp = s.t_promise[idx], s.t_payday[idx], s.t_pay[idx]
            tn = np.minimum(np.minimum(np.minimum(tb, tst), np.minimum(tpr, tpd)), tp)
            due = tn <= t
            if not due.all():
                idx, tn = idx[due], tn[due]
                tb, tst, tpr, tpd = tb[due], tst[due], tpr[due], tpd[due]
            if idx.size == 0:
                return
            is_b = tb == tn
            is_st = ~is_b & (tst == tn)
            is_pr = ~is_b & ~is_st & (tpr == tn)
            is_pd = ~is_b & ~is_st & ~is_pr & (tpd == tn)
            is_p = ~(is_b | is_st | is_pr | is_pd)
            if is_b.any():
                self._on_boundary(idx[is_b], tn[is_b])
            if is_st.any():
                self._on_statement(idx[is_st], tn[is_st])
            if is_pr.any():
                self._on_promise_date(idx[is_pr], tn[is_pr])
            if is_pd.any():
                self._on_payday(idx[is_pd], tn[is_pd])
            if is_p.any():
                self._on_payment(idx[is_p], tn[is_p])

    # ------------------------------------------------------------------ events

    def _on_statement(self, idx: I64, t: F64) -> None:
        """A statement bills the next instalment. An account that owed nothing starts
        afresh at its segment's ``lambda_0``; one in arrears keeps its intensity, which
        jumps by ``statement_impulse``."""
        b, s, bills, plan = self.book, self.book.state, self.bills, self.plan
        seg, code = b.segments, b.latent.segment[idx]
        k = bills.billed[idx].astype(np.int64)
        due = plan.due(idx, k)
        fresh = s.owed[idx] <= 0
        bills.billed[idx] += 1
        s.owed[idx] += b.observable.amount_due[idx]
        if fresh.any():
            i, ti, ci = idx[fresh], t[fresh], code[fresh]
            s.status[i] = PRE_DUE
            bills.oldest[i] = k[fresh]
            bills.oldest_left[i] = b.observable.amount_due[i]
            bills.ref_due[i] = due[fresh]
            s.t_state[i] = ti
            s.excess[i] = seg.lambda_0[ci] - seg.lambda_inf[ci]
            s.t_boundary[i] = due[fresh] + 1.0
            s.t_payday[i] = self._first_payday(i, ti)
        owing = ~fresh
        if owing.any():
            i = idx[owing]
            self.decay_to(i, t[owing])
            s.excess[i] += seg.statement_impulse[code[owing]]
            s.t_boundary[i] = np.minimum(s.t_boundary[i], due[owing] + 1.0)
        more = bills.billed[idx] < plan.statements[idx]
        bills.t_statement[idx] = np.where(more, plan.issued(idx, k + 1), np.inf)
        self.redraw(idx, t)

    def _on_boundary(self, idx: I64, t: F64) -> None:
        """The open statement falls due, or the oldest unpaid one reaches a mark: the
        bureau report, a new bucket, charge-off."""
        b, s, bills, plan = self.book, self.book.state, self.bills, self.plan
        seg = b.segments
        self.decay_to(idx, t)
        st = s.status[idx]
        billed = bills.billed[idx].astype(np.int64)
        oldest = bills.oldest[idx].astype(np.int64)
        open_ = bills.missed[idx] < billed - oldest
        in_house = (st == PRE_DUE) | (st == DELINQUENT)
        falls = in_house & open_ & (t >= plan.due(idx, billed - 1) + 1.0)
        if falls.any():
            self._falls_due(idx[falls], t[falls], (billed - 1 == oldest)[falls])

        # Marks of the oldest unpaid due date (days past due count from it).
        dpd_now = t - bills.ref_due[idx]
        st = s.status[idx]
        if self.bureau_dpd is not None:
            report = (st == DELINQUENT) & (dpd_now == self.bureau_dpd)
            i = idx[report]
            s.excess[i] += seg.bureau_impulse[b.latent.segment[i]]
        late = st == DELINQUENT
        reach30 = late & (dpd_now >= 30) & ~bills.deep[idx]
        if reach30.any():  # an episode reaches 30 days past due: will it reach 60?
            i = idx[reach30]
            bills.deep[i] = True
            watch = bills.counted[i] & (t[reach30] + 30.0 <= self.horizon)
            bills.watch60[i] = watch
            bills.reach30_w[i] += watch
        reach60 = late & (dpd_now >= 60) & bills.watch60[idx] & ~bills.deep60[idx]
        if reach60.any():
            i = idx[reach60]
            bills.deep60[i] = True
            bills.reach60_w[i] += 1
        charge = (st == DELINQUENT) & (dpd_now >= self.charge_off_dpd)
        s.t_boundary[idx] = np.where(charge, np.inf, self._next_boundary(idx, t))
        if charge.any():
            i = idx[charge]
            s.status[i] = CHARGED_OFF
            s.t_charged_off[i] = t[charge]
            s.written_off[i] = s.balance[i]
            s.owed[i] = s.written_off[i]
            s.balance[i] = 0.0
            s.t_promise[i] = np.inf
            bills.t_statement[i] = np.inf  # no statement after charge-off
            self.recorder.add(Event.CHARGE_OFF, t[charge], i, amount=s.written_off[i])
        self.redraw(idx, t)

    def _falls_due(self, i: I64, t: F64, only: np.ndarray) -> None:
        """The open statement of accounts ``i`` falls due unpaid (``only``: it is the
        account's one unpaid statement): the late fee, the overdue notice, and a new
        episode for an account with nothing past due before."""
        b, s, bills = self.book, self.book.state, self.bills
        fee = self.late_fee
        unpaid = np.where(only, bills.oldest_left[i], b.observable.amount_due[i])
        s.owed[i] += fee
        s.balance[i] += fee
        bills.fees[i] += fee
        bills.oldest_left[i] += np.where(only, fee, 0.0)
        bills.missed[i] += 1
        amount = unpaid + fee
        s.amount_delinquent[i] += amount
        inside = (t >= self.warmup) & (t <= self.horizon)
        bills.due_w[i] += inside
        bills.missed_w[i] += inside
        new = s.status[i] == PRE_DUE
        if new.any():
            k, tk = i[new], t[new]
            s.status[k] = DELINQUENT
            bills.delinquencies[k] += 1
            bills.t_episode[k] = tk
            s.t_delinquent[k] = np.minimum(s.t_delinquent[k], tk)
            counted = (tk >= self.warmup) & (tk <= self.horizon)
            bills.counted[k] = counted
            bills.episodes_w[k] += counted
            bills.episodes30_w[k] += counted & (tk - 1.0 + 30.0 <= self.horizon)
        counted = bills.counted[i]
        if counted.any():
            c, tc, ac = i[counted], t[counted], amount[counted]
            bills.amount_w[c] += ac
            bills.amount_n[c] += np.where(self._in_windows(c, tc), ac[:, None], 0.0)
        s.excess[i] += b.segments.due_impulse[b.latent.segment[i]]
        self.recorder.add(Event.DELINQUENT, t, i, amount=amount, code=bills.missed[i])

    def _in_windows(self, i: I64, t: F64) -> np.ndarray:
        """``(len(i), windows)``: whether ``t`` lies within each window of days after the
        current episode's due date, for episodes whose window ends by the horizon."""
        due = self.bills.t_episode[i] - 1.0
        w = self._windows[None, :]
        return ((t - due)[:, None] <= w) & (due[:, None] + w <= self.horizon)

    def _on_payment(self, idx: I64, t: F64, amount: F64 | None = None) -> None:
        b, s, bills = self.book, self.book.state, self.bills
        seg = b.segments
        code = b.latent.segment[idx]
        self.decay_to(idx, t)
        owed = s.owed[idx]
        frac, paid = self._payment(idx, code, owed, amount)
        st = s.status[idx]
        in_house = st != CHARGED_OFF
        a = b.observable.amount_due[idx]
        billed = bills.billed[idx].astype(np.int64)
        oldest = bills.oldest[idx].astype(np.int64)
        missed = bills.missed[idx].astype(np.int64)
        open_ = missed < billed - oldest
        open_unpaid = np.where(open_, np.where(billed - 1 == oldest, bills.oldest_left[idx], a),
                               0.0)
        # Paid towards the amount past due: the oldest statements come first.
        past_due = np.where(in_house, np.maximum(owed - open_unpaid, 0.0), 0.0)
        towards = np.minimum(paid, past_due)
        s.owed[idx] = owed - paid
        paid_in_house = np.where(in_house, paid, 0.0)
        s.balance[idx] -= paid_in_house
        s.paid_in_house[idx] += paid_in_house
        s.paid_delinquent[idx] += towards
        s.agency_collected[idx] += np.where(in_house, 0.0, paid)
        s.paid_before_start[idx] += np.where(t < 0, paid, 0.0)
        s.excess[idx] += seg.delta10[code] + seg.delta11[code] * frac
        self.recorder.add(Event.PAYMENT, t, idx, amount=paid, code=_PAY_STAGE[st])
        self._count_collected(idx, t, np.where(in_house, towards, paid), st)

        # Promises, as for a single statement.
        done = s.owed[idx] <= 0
        open_promise = np.isfinite(s.t_promise[idx])
        s.promise_paid[idx] += np.where(open_promise, paid, 0.0)
        covered = (s.promise_paid[idx] >= s.promise_amount[idx] - CENT) & ~self._covers_all(idx)
        met = open_promise & (covered | done)
        if met.any():
            i = idx[met]
            s.t_promise[i] = np.inf
            self.recorder.add(Event.PROMISE_KEPT, t[met], i, amount=s.promise_amount[i])

        # The statements the payment cleared, oldest first.
        moving = in_house & ~done
        if moving.any():
            self._pay_statements(idx[moving], t[moving], paid[moving], a[moving],
                                 oldest[moving], missed[moving], open_[moving])
        if done.any():
            self._paid_in_full(idx[done], t[done], st[done], open_[done])
        self.redraw(idx[~done], t[~done])

    def _count_collected(self, idx: I64, t: F64, towards: F64, st: np.ndarray) -> None:
        """Credit what was paid towards the amount past due to the counted episodes (the
        agency's collections up to what is still past due of the episode)."""
        bills = self.bills
        counted = bills.counted[idx] & ((st == DELINQUENT) | (st == CHARGED_OFF))
        if not counted.any():
            return
        c, tc, paid = idx[counted], t[counted], towards[counted]
        bills.collected_w[c] += np.maximum(
            np.minimum(paid, bills.amount_w[c] - bills.collected_w[c]), 0.0)
        room = bills.amount_n[c] - bills.collected_n[c]
        add = np.where(self._in_windows(c, tc), np.minimum(paid[:, None], room), 0.0)
        bills.collected_n[c] += np.maximum(add, 0.0)

    def _pay_statements(self, i: I64, t: F64, paid: F64, a: F64, oldest: I64, missed: I64,
                        open_: np.ndarray) -> None:
        """Walk a partial payment through the unpaid statements of accounts ``i``, oldest
        first: which statements it clears, what is left of the new oldest, and a cure when
        nothing is past due any more."""
        s, bills, plan = self.book.state, self.bills, self.plan
        per = a + self.late_fee  # a statement past due, with its fee
        left = bills.oldest_left[i]
        cleared = paid >= left - CENT
        rest = np.maximum(paid - left, 0.0)
        past_due_after = np.where(missed > 0, missed - 1, 0)  # past due after the oldest
        with np.errstate(divide="ignore", invalid="ignore"):
            whole = np.floor((rest + CENT) / per)
        whole = np.where(cleared, np.minimum(whole, past_due_after), 0).astype(np.int64)
        new_oldest = oldest + cleared + whole
        new_missed = missed - np.minimum(new_oldest - oldest, missed)
        # What is left of the new oldest: the rest of what is owed after the statements
        # behind it (past due ones with their fee, then the open one).
        behind_pd = np.maximum(new_missed - 1, 0)
        billed = bills.billed[i].astype(np.int64)
        open_behind = open_ & (new_oldest < billed - 1)
        bills.oldest_left[i] = np.maximum(s.owed[i] - behind_pd * per - open_behind * a, 0.0)
        self._record_paid(i, t, oldest, new_oldest)
        bills.oldest[i] = new_oldest
        bills.missed[i] = new_missed
        moved = new_oldest > oldest
        if moved.any():
            j = i[moved]
            bills.ref_due[j] = plan.due(j, new_oldest[moved])
            s.t_boundary[j] = self._next_boundary(j, t[moved])
        cured = (missed > 0) & (new_missed == 0)
        if cured.any():
            j = i[cured]
            s.status[j] = PRE_DUE  # the open statement is still owed
            self._end_episode(j, t[cured], cured=True)

    def _paid_in_full(self, i: I64, t: F64, st: np.ndarray, open_: np.ndarray) -> None:
        """Accounts ``i`` owe nothing any more: current until the next statement, or
        closed once every statement of the plan is paid (the agency's accounts: all of the
        written-off balance collected)."""
        s, bills, plan = self.book.state, self.bills, self.plan
        s.owed[i] = 0.0
        for clock in (s.t_pay, s.t_boundary, s.t_payday, s.t_promise):
            clock[i] = np.inf
        house = st != CHARGED_OFF
        if not house.any():
            return
        j, tj, stj = i[house], t[house], st[house]
        billed = bills.billed[j].astype(np.int64)
        # The open statement was paid before its due date: it fell due paid.
        falls = plan.due(j, billed - 1) + 1.0
        on_time = open_[house] & (falls >= self.warmup) & (falls <= self.horizon)
        bills.due_w[j] += on_time
        self._record_paid(j, tj, bills.oldest[j].astype(np.int64), billed)
        late = stj == DELINQUENT
        if late.any():
            self._end_episode(j[late], tj[late], cured=True)
        more = billed < plan.statements[j]
        s.status[j] = np.where(more, CURRENT, np.where(late, CURED, PAID_ON_TIME))
        s.t_paid[j] = np.where(more, s.t_paid[j], tj)
        bills.oldest[j] = billed
        bills.oldest_left[j] = 0.0
        bills.missed[j] = 0
        bills.ref_due[j] = plan.due(j, billed)  # the next statement's (if any)

    def _end_episode(self, i: I64, t: F64, cured: bool) -> None:
        bills = self.bills
        if cured:
            counted = bills.counted[i]
            since = t - (bills.t_episode[i] - 1.0)
            eligible = bills.t_episode[i] - 1.0 + 30.0 <= self.horizon
            bills.cures_w[i] += counted
            bills.cures30_w[i] += counted & eligible & (since <= 30.0)
            bills.t_cured_deep[i] = np.where(bills.deep[i], t, bills.t_cured_deep[i])
        bills.t_episode[i] = np.inf
        bills.counted[i] = False
        bills.deep[i] = False
        bills.deep60[i] = False
        bills.watch60[i] = False

    def _record_paid(self, i: I64, t: F64, first: I64, end: I64) -> None:
        """The twin's record: statements ``first .. end - 1`` of accounts ``i`` were paid in
        full at ``t``."""
        paid_at = self.bills.paid_at
        if paid_at is None:
            return
        width = paid_at.shape[1]
        for step in range(int((end - first).max(initial=0))):
            k = first + step
            rows = (k < end) & (k < width)
            paid_at[i[rows], k[rows]] = t[rows]
