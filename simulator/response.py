"""How borrowers answer an executed contact (docs/model.md sections 5-7).

A contact is delivered or not, attended (read, answered, right party) or not; an
attended contact raises repayment intensity by the channel's impulse, scaled by the
borrower's responsiveness, the segment and fatigue (and, like the whole intensity, by
the delinquency bucket's multiplier). Every
delivered contact adds pressure; pressure above the borrower's tolerance risks churn,
a complaint, going dark on the channel and (electronic channels) an opt-out. A
right-party call may end in a promise to pay.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from simulator.book import (
    AGENT_CALL,
    BOOL,
    ELECTRONIC,
    F64,
    I64,
    OUTCOME_INDEX,
    ROBOCALL,
    Book,
    hour_one,
)
from simulator.recorder import Event, Recorder
from simulator.repayment import RepaymentProcess
from simulator.rng import Streams
from simulator.scenario import CHANNELS, Scenario

_SLOTS = 12  # uniforms drawn per contact; slot meanings in ``ContactResponse.contact``
_MESSAGE_SLOTS = 6  # those a contact other than an agent call uses: 0-5


@dataclass
class ContactOutcome:
    """Per-contact results of one executed batch (aligned with ``idx``)."""

    idx: I64
    delivered: BOOL
    attended: BOOL  # read / answered / right-party contact
    promise: BOOL
    agent_minutes: F64


class ContactResponse:
    """Applies executed contacts to the book."""

    def __init__(self, book: Book, scenario: Scenario, streams: Streams,
                 repayment: RepaymentProcess, recorder: Recorder):
        self.book = book
        self.repayment = repayment
        self.recorder = recorder
        self.stream = streams.borrower_stream("contact")
        self.channels = [scenario.channels.get(c) for c in CHANNELS]
        self.unanswered_impulse = scenario.channels.unanswered_call_impulse
        self.unanswered_pressure = scenario.channels.unanswered_call_intrusiveness
        self.fatigue_factor = scenario.repayment.fatigue_factor
        self.fatigue_memory = scenario.repayment.fatigue_memory_days
        at = scenario.attrition
        self.pressure_decay = np.log(2.0) / at.pressure_half_life_days
        self.churn_s, self.complaint_s, self.dark_s = (
            at.churn_sensitivity, at.complaint_sensitivity, at.dark_sensitivity)
        self.promises = scenario.promises
        ag = scenario.agents
        hours = np.array([b.from_hour for b in ag.rpc_by_hour])
        rates = np.array([b.rate for b in ag.rpc_by_hour])
        self._rpc_hours, self._rpc_rates = hours.tolist(), rates.tolist()
        self.agent_cost_per_minute = ag.cost_per_hour / 60.0
        self.ring_minutes = ag.ring_seconds / 60.0
        self.wrap_minutes = ag.wrap_seconds / 60.0
        hm = ag.handle_minutes
        self.handle_mu = np.log(hm.mean) - 0.5 * hm.sigma**2
        self.handle_sigma = hm.sigma
        # Dials prepared by ``prepare_dials``: account -> (the contact counter the draws
        # belong to, delivered, the attention uniform, the agent's minutes if answered).
        # Only queued calls have one, so a dict holds them in little memory.
        self._prepared: dict[int, tuple[int, bool, float, float]] = {}

    def rpc_rate(self, t: float) -> float:
        """Right-party-contact rate per dial at the hour of ``t``, before the borrower."""
        return self._rpc_rates[bisect.bisect_right(self._rpc_hours, hour_one(t)) - 1]

    def _talk_minutes(self, u: F64 | float) -> F64:
        """Lognormal talk time of a right-party call from a uniform (inverse normal)."""
        return np.exp(self.handle_mu + self.handle_sigma * ndtri(u))

    def prepare_dials(self, idx: I64) -> None:
        """Make the draws of a coming agent dial of each of ``idx``, vectorised.

        A dial's draws depend only on the borrower and its contact counter, so they can
        be made for a whole release of calls at once; ``dial`` uses them if the counter
        has not moved by the time the agent dials, and draws afresh if it has.
        """
        counter = self.book.state.contact_counter[idx]
        u = self.stream.uniforms_at(idx, counter, (0, 1, 10))
        delivered = (self.book.observable.on_file[idx, AGENT_CALL]
                     & (u[:, 0] < self.channels[AGENT_CALL].delivery_prob))
        # Added in the order ``dial`` adds them, so each sum is the same to the last bit.
        minutes = self.ring_minutes + (self._talk_minutes(u[:, 2]) + self.wrap_minutes)
        self._prepared.update(zip(idx.tolist(), zip(
            counter.tolist(), delivered.tolist(), u[:, 1].tolist(), minutes.tolist(),
            strict=True), strict=True))

    def forget_dials(self, ids: Iterable[int]) -> None:
        """Drop the prepared draws of calls that will not be dialled."""
        prepared = self._prepared
        for i in ids:
            prepared.pop(i, None)

    def forget_all_dials(self) -> None:
        """Drop every prepared dial: the queue was drained, so no call will be dialled.

        (A dial's draws are a function of the borrower and its counter alone, so a
        prepared dial dropped here and drawn again later gives the same call.)"""
        self._prepared.clear()

    def dial(self, i: int, t: float) -> tuple[bool, bool, float]:
        """What an agent's dial of ``i`` at ``t`` does: (delivered, right party, agent minutes).

        Uses up the draws ``prepare_dials`` made for it, if any, and writes nothing to
        the book; ``contact`` then applies the call's effects, from the same draws (slots
        0, 1 and 10 of the borrower's current counter).
        """
        # ``item`` reads each book field as a Python number, cheaper than numpy scalars.
        s, lat = self.book.state, self.book.latent
        counter = s.contact_counter.item(i)
        prepared = self._prepared.pop(i, None)
        if prepared is not None and prepared[0] == counter:
            _, delivered, u1, answered_minutes = prepared
        else:
            prepared = None
            u0, u1, u10 = self.stream.uniforms_one(i, counter, (0, 1, 10))
            delivered = (self.book.observable.on_file.item(i, AGENT_CALL)
                         and u0 < self.channels[AGENT_CALL].delivery_prob)
        p_attend = min(self.rpc_rate(t) * lat.answer_propensity.item(i), 1.0)
        attended = delivered and not s.dark.item(i, AGENT_CALL) and u1 < p_attend
        if not attended:
            return delivered, False, self.ring_minutes
        if prepared is not None:
            return True, True, answered_minutes
        return True, True, self.ring_minutes + (float(self._talk_minutes(u10))
                                                + self.wrap_minutes)

    def contact(self, idx: I64, channel: int, t: F64 | float,
                dialled: tuple[BOOL, BOOL, F64] | None = None) -> ContactOutcome:
        """Execute one contact on ``channel`` at time ``t`` (one time, or one per account)
        for each of ``idx``.

        The accounts must already be advanced to their time and cleared by the rule pack.
        ``dialled`` carries the (delivered, right party, minutes) an agent's ``dial``
        already decided, for calls whose effects are applied in a later batch.
        """
        b, s = self.book, self.book.state
        ch = self.channels[channel]
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), idx.shape)
        # Only an agent call uses the promise and talk-time slots (6-10): the other
        # channels draw slots 0-5 alone (each slot is drawn on its own, so the values
        # are the same).
        u = self.stream.uniforms(idx, s.contact_counter[idx],
                                 _SLOTS if channel == AGENT_CALL else _MESSAGE_SLOTS)
        s.contact_counter[idx] += 1
        seg = b.latent.segment[idx]

        # Slot 0: delivery; slot 1: attention (read / answer / right party).
        if dialled is not None:
            delivered, attended, minutes = dialled
        else:
            reach = b.observable.on_file[idx, channel]
            delivered = reach & (u[:, 0] < ch.delivery_prob)
            if channel == AGENT_CALL:
                rpc = np.array([self.rpc_rate(x) for x in t.tolist()])
                p_attend = np.minimum(rpc * b.latent.answer_propensity[idx], 1.0)
            elif channel == ROBOCALL:
                p_attend = np.minimum(ch.attention_prob * b.latent.answer_propensity[idx], 1.0)
            else:
                p_attend = np.full(idx.size, ch.attention_prob)
            attended = delivered & ~s.dark[idx, channel] & (u[:, 1] < p_attend)
            # Agent time, slot 10: ring, plus talk and wrap-up for a right-party contact.
            minutes = np.zeros(idx.size)
            if channel == AGENT_CALL:
                talk = self._talk_minutes(u[:, 10])
                minutes = np.where(attended, self.ring_minutes + talk + self.wrap_minutes,
                                   self.ring_minutes)
        is_call = channel in (ROBOCALL, AGENT_CALL)

        # Impulse on repayment intensity, shrunk by fatigue from recent contacts. The
        # bucket (or agency) multiplier scales it with the rest of the intensity when the
        # next payment is drawn (``RepaymentProcess.redraw``), not here.
        fatigue = s.fatigue[idx] * np.exp(-(t - s.t_fatigue[idx]) / self.fatigue_memory)
        # A call that rings unanswered is a missed-call reminder, unless the borrower has
        # gone dark on the channel: then the ring is ignored (no impulse, but pressure).
        rang = delivered & is_call & ~s.dark[idx, channel]
        base = np.where(attended, ch.impulse, np.where(rang, self.unanswered_impulse, 0.0))
        impulse = (base * b.segments.impulse_multiplier[seg, channel]
                   * b.latent.responsiveness[idx, channel]
                   * self.fatigue_factor**fatigue)
        s.fatigue[idx] = fatigue + delivered
        s.t_fatigue[idx] = t
        lift = impulse > 0
        if lift.any():
            self.repayment.jump(idx[lift], t[lift], impulse[lift])

        # Pressure and its consequences. Slots 2-5: churn, complaint, dark, opt-out.
        add = np.where(delivered, np.where(is_call & ~attended, self.unanswered_pressure,
                                           ch.intrusiveness), 0.0)
        pressure = s.pressure[idx] * np.exp(-self.pressure_decay * (t - s.t_pressure[idx])) + add
        s.pressure[idx] = pressure
        s.t_pressure[idx] = t
        excess = np.where(delivered, np.maximum(pressure - b.latent.tolerance[idx], 0.0), 0.0)
        churn = u[:, 2] < -np.expm1(-self.churn_s * excess)
        complaint = u[:, 3] < -np.expm1(
            -self.complaint_s * b.latent.complaint_propensity[idx] * excess)
        dark = u[:, 4] < -np.expm1(-self.dark_s * excess)
        optout = (u[:, 5] < -np.expm1(-ch.optout_sensitivity * excess)) & (channel in ELECTRONIC)

        # Promise to pay on a right-party agent call. Slots 6-9.
        promise = np.zeros(idx.size, dtype=bool)
        if channel == AGENT_CALL and self.promises.enabled:
            promise = (attended & ~np.isfinite(s.t_promise[idx]) & (s.owed[idx] > 0)
                       & (u[:, 6] < b.segments.promise_prob[seg]))
            if promise.any():
                self._make_promise(idx[promise], t[promise], u[promise], seg[promise])

        self._record(idx, channel, t, delivered, attended, promise, minutes, ch.cost)
        self._apply_attrition(idx, channel, t, churn, complaint, dark, optout)
        return ContactOutcome(idx, delivered, attended, promise, minutes)

    def _make_promise(self, i: I64, t: F64, u: F64, seg: np.ndarray) -> None:
        s, b, pr = self.book.state, self.book, self.promises
        s.t_promise[i] = t + pr.days.low + (pr.days.high - pr.days.low) * u[:, 7]
        partial = u[:, 8] < pr.partial_prob
        s.promise_amount[i] = np.where(partial, pr.partial_fraction, 1.0) * s.owed[i]
        s.promise_full[i] = ~partial
        s.promise_paid[i] = 0.0
        keep = b.segments.promise_keep_prob[seg]
        # Willingness shifts the keep probability on the probit scale.
        with np.errstate(divide="ignore"):
            z = ndtri(keep) + pr.willingness_effect * b.latent.willingness[i]
        s.promise_kept[i] = u[:, 9] < np.where(keep > 0, ndtr(z), 0.0)
        s.promises_made[i] += 1
        self.recorder.add(Event.PROMISE, t, i, channel=AGENT_CALL, amount=s.promise_amount[i])

    def _record(self, idx: I64, channel: int, t: F64, delivered: BOOL, attended: BOOL,
                promise: BOOL, minutes: F64, cost: float) -> None:
        s = self.book.state
        is_call = channel in (ROBOCALL, AGENT_CALL)
        outcome = np.where(
            promise, OUTCOME_INDEX["promise"],
            np.where(attended, OUTCOME_INDEX["right_party" if is_call else "read"],
                     np.where(delivered, OUTCOME_INDEX["no_answer" if is_call else "delivered"],
                              OUTCOME_INDEX["undelivered"]))).astype(np.int8)
        s.contacts[idx, channel] += 1
        s.last_contact[idx, channel] = t
        s.last_outcome[idx] = outcome
        if channel == AGENT_CALL:
            s.right_party_contacts[idx] += attended
        # Agent calls cost the agent's time at the staffed-hour rate.
        amount = cost + minutes * self.agent_cost_per_minute
        self.recorder.add(Event.CONTACT, t, idx, channel=channel, amount=amount, code=outcome,
                          agent_minutes=minutes)

    def _apply_attrition(self, idx: I64, channel: int, t: F64, churn: BOOL, complaint: BOOL,
                         dark: BOOL, optout: BOOL) -> None:
        s = self.book.state
        churn &= ~s.churned[idx]
        i = idx[churn]
        s.churned[i] = True
        s.t_churn[i] = t[churn]
        self.recorder.add(Event.CHURN, t[churn], i, channel=channel)
        i = idx[complaint]
        s.complaints[i] += 1
        self.recorder.add(Event.COMPLAINT, t[complaint], i, channel=channel)
        dark &= ~s.dark[idx, channel]
        i = idx[dark]
        s.dark[i, channel] = True
        self.recorder.add(Event.DARK, t[dark], i, channel=channel)
        optout &= ~s.opted_out[idx, channel]
        i = idx[optout]
        s.opted_out[i, channel] = True
        self.recorder.add(Event.OPT_OUT, t[optout], i, channel=channel)
