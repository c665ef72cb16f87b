"""The scenario schema: every section of a scenario file, validated into an immutable,
typed ``Scenario``.

Every behavioural mechanism of the model is a field here with a documented default
and unit (time in days, money in the scenario's currency). Unknown keys are refused.
"""

from __future__ import annotations

import copy
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

CHANNELS: tuple[str, ...] = ("push", "email", "sms", "robocall", "agent_call")
SEGMENTS: tuple[str, ...] = (
    "on_time",
    "self_curer",
    "cash_flow",
    "unwilling",
    "hardship",
    "unreachable",
)
BUCKETS: tuple[str, ...] = ("M0", "M1", "M2", "M3", "M4")
BUCKET_NAMES: tuple[Literal["M0", "M1", "M2", "M3", "M4"], ...] = ("M0", "M1", "M2", "M3", "M4")
PRODUCTS: tuple[str, ...] = ("shopping", "education", "travel", "medical")

ProductName = Literal["shopping", "education", "travel", "medical"]
MultiplierName = Literal["M0", "M1", "M2", "M3", "M4", "agency"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Hour = Annotated[float, Field(ge=0.0, le=24.0)]
#: The sigma of a lognormal's log. Above ~10 the distribution is degenerate (its median is
#: e^-50 of its mean) and sigma**2 overflows long before a float does.
Sigma = Annotated[float, Field(ge=0.0, le=10.0, allow_inf_nan=False)]


def _default_products() -> dict[ProductName, float]:
    return {"shopping": 0.6, "education": 0.1, "travel": 0.15, "medical": 0.15}


def _default_bucket_multiplier() -> dict[MultiplierName, float]:
    return {"M0": 1.0, "M1": 1.0, "M2": 1.0, "M3": 0.7, "M4": 0.4, "agency": 0.3}


class Section(BaseModel):
    """Base of every scenario section: immutable, unknown keys refused, no NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PerChannel(Section):
    """One number per channel."""

    push: NonNegative
    email: NonNegative
    sms: NonNegative
    robocall: NonNegative
    agent_call: NonNegative

    def as_tuple(self) -> tuple[float, ...]:
        return tuple(getattr(self, c) for c in CHANNELS)


def _per_channel(**values: float) -> Any:
    return Field(default_factory=lambda: PerChannel(**values))


class ChannelProbabilities(PerChannel):
    """One probability per channel."""

    push: Probability
    email: Probability
    sms: Probability
    robocall: Probability
    agent_call: Probability


class Range(Section):
    """A closed interval ``[low, high]``."""

    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must not be below low ({self.low})")
        return self


class NonNegativeRange(Range):
    """A closed interval ``[low, high]`` of quantities that cannot be negative."""

    low: NonNegative
    high: NonNegative


class FractionRange(Range):
    """A closed interval ``[low, high]`` inside ``[0, 1]``."""

    low: Probability
    high: Probability


class LogNormal(Section):
    """A lognormal distribution given by its mean and the sigma of its log."""

    mean: Positive
    sigma: Sigma = 0.5


class Segment(Section):
    """How one behavioural segment pays and answers contact (docs/model.md sections 2-7).

    Intensities are repayment events per day of the controlled Hawkes process.
    """

    share: Probability = Field(description="share of the book in this segment")
    lambda_0: NonNegative = Field(description="repayment intensity on the statement date, 1/day")
    lambda_inf: NonNegative = Field(description="long-run repayment intensity, 1/day")
    kappa: NonNegative = Field(0.7, description="decay rate of excess intensity, 1/day")
    delta10: NonNegative = Field(0.02, description="intensity jump on any payment, 1/day")
    delta11: NonNegative = Field(0.5, description="extra jump per unit fraction paid, 1/day")
    due_impulse: NonNegative = Field(
        0.0,
        description="intensity jump when the due date passes unpaid (the borrower notices "
        "the automatic overdue notice), 1/day",
    )
    payday_impulse: NonNegative = Field(
        0.0, description="intensity jump on each payday (cash-flow constrained), 1/day"
    )
    statement_impulse: NonNegative = Field(
        0.0,
        description="intensity jump when a new statement is issued to an account still in "
        "arrears (population.billing; an account that owes nothing starts a new episode at "
        "lambda_0 instead), 1/day",
    )
    bureau_impulse: NonNegative = Field(
        0.0,
        description="intensity jump when the delinquency is reported to the credit bureau "
        "(at repayment.bureau_report_dpd), 1/day",
    )
    full_payment_prob: Probability = Field(
        0.8, description="probability that a payment clears all that is owed"
    )
    partial_fraction: FractionRange = Field(
        default_factory=lambda: FractionRange(low=0.1, high=1.0),
        description="fraction of the amount owed paid by a partial payment (uniform)",
    )
    impulse_multiplier: PerChannel = Field(
        default_factory=lambda: PerChannel(push=1, email=1, sms=1, robocall=1, agent_call=1),
        description="multiplies each channel's contact impulse for this segment",
    )
    reachability_multiplier: Probability = Field(
        1.0, description="multiplies the probability that phone, e-mail and app are on file"
    )
    answer_multiplier: NonNegative = Field(
        1.0, description="multiplies the chance of answering a call (right-party contact)"
    )
    promise_prob: Probability = Field(
        0.5, description="probability that a right-party call ends in a promise to pay"
    )
    promise_keep_prob: Probability = Field(
        0.6, description="probability that a promise is kept (before willingness adjustment)"
    )
    tolerance: LogNormal = Field(
        default_factory=lambda: LogNormal(mean=2.0, sigma=0.5),
        description="contact tolerance: pressure the borrower bears before attrition risk",
    )
    complaint_propensity: LogNormal = Field(
        default_factory=lambda: LogNormal(mean=1.0, sigma=0.5),
        description="multiplies the complaint hazard of excess pressure",
    )
    prior_delinquencies_mean: Annotated[float, Field(ge=0.0, le=1000.0)] = Field(
        0.3, description="mean of the (Poisson) count of earlier delinquencies on file"
    )
    score_bad: bool = Field(
        False,
        description="whether the credit score treats this segment as a bad risk "
        "(the target against which score.auc is defined)",
    )


DEFAULT_SEGMENTS: dict[str, dict[str, Any]] = {
    # Shares and intensities are assumptions tuned so that the default scenario lands in
    # the stylised-fact ranges of docs/model.md section 12 (see analysis/stylised_facts.py).
    # Pays before the due date; misses rarely and then pays within days.
    "on_time": dict(
        share=0.69, lambda_0=0.30, lambda_inf=0.25, kappa=0.3, full_payment_prob=0.95,
        due_impulse=0.6, bureau_impulse=0.5, prior_delinquencies_mean=0.1,
        tolerance=dict(mean=2.0, sigma=0.5), promise_prob=0.8, promise_keep_prob=0.85,
    ),
    # Forgetful: pays within days of the due date with or without a reminder.
    "self_curer": dict(
        share=0.12, lambda_0=0.03, lambda_inf=0.02, kappa=0.3, full_payment_prob=0.85,
        due_impulse=0.16, bureau_impulse=0.3, prior_delinquencies_mean=0.6,
        impulse_multiplier=dict(push=3.5, email=2.0, sms=5.0, robocall=2.0, agent_call=1.0),
        tolerance=dict(mean=1.5, sigma=0.5), promise_prob=0.7, promise_keep_prob=0.8,
    ),
    # Pays partially, around paydays.
    "cash_flow": dict(
        share=0.153, lambda_0=0.02, lambda_inf=0.008, kappa=0.5, full_payment_prob=0.4,
        partial_fraction=dict(low=0.2, high=0.7), payday_impulse=0.3, due_impulse=0.05,
        bureau_impulse=0.5, prior_delinquencies_mean=1.2,
        impulse_multiplier=dict(push=1.0, email=1.0, sms=1.5, robocall=1.5, agent_call=2.0),
        tolerance=dict(mean=2.5, sigma=0.5), promise_prob=0.6, promise_keep_prob=0.6,
        score_bad=True,
    ),
    # Could pay but will not without escalation: messages do little, calls do more.
    "unwilling": dict(
        share=0.025, lambda_0=0.006, lambda_inf=0.006, kappa=0.7, full_payment_prob=0.6,
        bureau_impulse=0.5, prior_delinquencies_mean=1.0,
        impulse_multiplier=dict(push=0.2, email=0.2, sms=0.4, robocall=0.8, agent_call=3.0),
        answer_multiplier=0.6,
        tolerance=dict(mean=4.0, sigma=0.5), promise_prob=0.35, promise_keep_prob=0.45,
        score_bad=True,
    ),
    # Cannot pay: contact mostly annoys.
    "hardship": dict(
        share=0.008, lambda_0=0.012, lambda_inf=0.012, kappa=0.7, full_payment_prob=0.2,
        partial_fraction=dict(low=0.05, high=0.3), bureau_impulse=0.1,
        prior_delinquencies_mean=1.5,
        impulse_multiplier=dict(push=0.15, email=0.15, sms=0.15, robocall=0.15, agent_call=0.2),
        tolerance=dict(mean=1.2, sigma=0.5), complaint_propensity=dict(mean=3.0, sigma=0.5),
        promise_prob=0.4, promise_keep_prob=0.35, score_bad=True,
    ),
    # Unreachable or fraudulent: never pays, rarely reachable.
    "unreachable": dict(
        share=0.004, lambda_0=0.0, lambda_inf=0.0, delta10=0.0, delta11=0.0,
        prior_delinquencies_mean=0.5,
        impulse_multiplier=dict(push=0, email=0, sms=0, robocall=0, agent_call=0),
        reachability_multiplier=0.3, answer_multiplier=0.1,
        tolerance=dict(mean=3.0, sigma=0.5), promise_prob=0.0, promise_keep_prob=0.0,
        score_bad=True,
    ),
}


class Score(Section):
    """The observable credit score: a binormal signal of the latent risk class."""

    auc: Annotated[float, Field(ge=0.5, lt=1.0)] = Field(
        0.75,
        description="discriminating power: AUC of the score between segments with "
        "score_bad=true and the rest (0.5 = no information)",
    )
    mean: float = Field(650.0, allow_inf_nan=False, description="average score, points")
    sd: Positive = Field(70.0, description="standard deviation of the score, points")


class Billing(Section):
    """Monthly statements: the living book (docs/model.md section 2.5)."""

    enabled: bool = Field(
        False,
        description="issue a statement every cycle_days while the account has instalments "
        "left and is not charged off. False: every account has a single statement (the "
        "instalment of population.amount_due), the rest of its balance never falls due",
    )
    cycle_days: Annotated[int, Field(ge=1, le=365)] = Field(
        30, description="days between two statements (and two due dates) of an account; "
        "at least population.statement_lead_days",
    )


class Arrears(Section):
    """Accounts already past due on day 0, by bucket (docs/model.md section 2.6)."""

    M1: Probability = Field(0.0, description="share of accounts 1-30 days past due on day 0")
    M2: Probability = Field(0.0, description="share of accounts 31-60 days past due on day 0")
    M3: Probability = Field(0.0, description="share of accounts 61-90 days past due on day 0")
    M4: Probability = Field(
        0.0, description="share of accounts 91 or more days past due on day 0 (below "
        "repayment.charge_off_dpd)")

    @model_validator(mode="after")
    def _at_most_one(self) -> Arrears:
        total = self.M1 + self.M2 + self.M3 + self.M4
        if total > 1.0 + 1e-9:
            raise ValueError(f"shares M1 to M4 sum to {total:.6g}; they must sum to at most 1")
        return self

    def shares(self) -> tuple[float, float, float, float]:
        return (self.M1, self.M2, self.M3, self.M4)

    @property
    def any(self) -> bool:
        return any(v > 0 for v in self.shares())


class Inflow(Section):
    """New accounts opening over the horizon (docs/model.md section 2.7)."""

    rate_per_day: NonNegative = Field(
        0.0,
        description="new accounts opening per day, per account of the day-0 book "
        "(population.size): 0.0028 opens about 56 a day on 20,000 accounts. Each new account "
        "has a full plan of 1 + population.instalments_remaining statements, the first "
        "due population.billing.cycle_days after it opens",
    )


class Population(Section):
    """The synthetic book: who the borrowers are (docs/model.md section 2)."""

    size: Annotated[int, Field(ge=1, le=50_000_000)] = Field(
        20_000, description="number of accounts in the book"
    )
    due_day: Range = Field(
        default_factory=lambda: Range(low=0, high=30),
        description="statement due dates are whole days drawn uniformly in this range, day",
    )
    statement_lead_days: Annotated[float, Field(ge=0.0, le=365.0)] = Field(
        15.0, description="days between the statement and its due date (the pre-due window)"
    )
    billing: Billing = Field(
        default_factory=Billing,
        description="monthly statements (off: a single statement per account)")
    arrears: Arrears = Field(
        default_factory=Arrears,
        description="accounts already past due on day 0 (needs billing)")
    inflow: Inflow = Field(
        default_factory=Inflow,
        description="new accounts opening over the horizon (needs billing)")
    amount_due: LogNormal = Field(
        default_factory=lambda: LogNormal(mean=600.0, sigma=0.6),
        description="instalment due on the statement, currency",
    )
    instalments_remaining: Annotated[int, Field(ge=0, le=120)] = Field(
        11, description="at most this many further instalments make up the rest of the balance"
    )
    credit_line_multiple: NonNegativeRange = Field(
        default_factory=lambda: NonNegativeRange(low=1.0, high=2.5),
        description="credit line as a multiple of the balance",
    )
    tenure_months: LogNormal = Field(
        default_factory=lambda: LogNormal(mean=18.0, sigma=0.8),
        description="months since the account was opened",
    )
    products: dict[ProductName, Probability] = Field(
        default_factory=_default_products,
        description="share of accounts by product scenario",
    )
    ability_willingness_correlation: Annotated[float, Field(ge=-0.99, le=0.99)] = Field(
        0.5, description="correlation of the latent ability and willingness (Gaussian copula)"
    )
    responsiveness_sigma: Sigma = Field(
        0.5, description="sigma of the lognormal per-channel responsiveness (mean 1)"
    )
    answer_sigma: Sigma = Field(
        0.6, description="sigma of the lognormal per-borrower propensity to answer calls"
    )
    on_file: ChannelProbabilities = Field(
        default_factory=lambda: ChannelProbabilities(
            push=0.75, email=0.6, sms=0.97, robocall=0.97, agent_call=0.97
        ),
        description="probability that the channel is on file (app installed, e-mail, valid "
        "phone); sms, robocall and agent_call share the phone draw",
    )
    clv: LogNormal = Field(
        default_factory=lambda: LogNormal(mean=400.0, sigma=0.8),
        description="customer lifetime value lost if the customer churns, currency",
    )
    clv_estimate_noise: Sigma = Field(
        0.3, description="sigma of the lognormal error of the lender's observable CLV estimate"
    )
    consent_share: Probability = Field(
        0.0, description="share of borrowers who consented to contact in quiet hours"
    )
    do_not_contact_share: Probability = Field(
        0.01, description="share of accounts on the do-not-contact register"
    )
    segments: dict[str, Segment] = Field(
        default_factory=lambda: {k: Segment(**v) for k, v in DEFAULT_SEGMENTS.items()},
        description="the behavioural segments; a segment given in the file is merged over "
        "its defaults",
    )
    score: Score = Field(default_factory=Score)
    from_file: str | None = Field(
        None,
        description="a lender's accounts file (CSV or Parquet, docs/portfolio-data.md) or "
        "portfolio folder whose accounts seed the book: observables as given, latent "
        "traits drawn given them (the risk class from the score). population.size accounts "
        "are drawn from the file with replacement, unless size equals the file's number of "
        "accounts (each taken once). A relative path is relative to the scenario file. An "
        "account's dpd is its arrears: due on day -dpd (so population.arrears is refused "
        "beside it). With population.billing each account's plan is round(balance / "
        "instalment) statements (docs/model.md section 2.8). null: a synthetic book",
    )

    @field_validator("from_file")
    @classmethod
    def _path_given(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("give a path, or null for a synthetic book")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_source_of_arrears(cls, data: Any) -> Any:
        # A lender's file and population.arrears both say which accounts are in arrears on
        # day 0: one must go. Checked before the fields, so that this is the one line a
        # user reads (arrears alone would first ask for monthly statements).
        if (isinstance(data, dict) and data.get("from_file") is not None
                and _gives_arrears(data.get("arrears"))):
            raise ValueError("population.from_file and population.arrears both give the "
                             "book's arrears on day 0 (the file's days past due are the "
                             "arrears): drop population.arrears")
        return data

    @field_validator("billing")
    @classmethod
    def _cycle_covers_lead(cls, value: Billing, info: ValidationInfo) -> Billing:
        lead = info.data.get("statement_lead_days")
        if value.enabled and lead is not None and value.cycle_days < lead:
            raise ValueError(f"cycle_days ({value.cycle_days}) is shorter than the pre-due "
                             f"window population.statement_lead_days ({lead:g}); a statement "
                             "must fall due before the next is issued")
        return value

    @field_validator("arrears", "inflow")
    @classmethod
    def _needs_billing(cls, value: Arrears | Inflow, info: ValidationInfo) -> Arrears | Inflow:
        billing = info.data.get("billing")
        used = value.any if isinstance(value, Arrears) else value.rate_per_day > 0
        if used and billing is not None and not billing.enabled:
            raise ValueError("needs monthly statements: set population.billing.enabled to "
                             "true")
        return value

    @field_validator("due_day")
    @classmethod
    def _due_days_bounded(cls, value: Range) -> Range:
        # Bounded like horizon_days: due days are drawn as int64 and counted in floats.
        if max(abs(value.low), abs(value.high)) > 3650:
            raise ValueError("due days must lie within 3650 days of the start")
        return value

    @field_validator("segments", mode="before")
    @classmethod
    def _merge_segment_defaults(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {}
        for name in SEGMENTS:
            base = copy.deepcopy(DEFAULT_SEGMENTS[name])
            given = value.get(name)
            if isinstance(given, dict):
                base = _deep_merge(base, given)
            elif given is not None:
                base = given
            merged[name] = base
        for name in value:
            if name not in SEGMENTS:
                raise ValueError(f"unknown segment '{name}'; expected one of {', '.join(SEGMENTS)}")
        return merged

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> Population:
        total = sum(s.share for s in self.segments.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"segment shares must sum to 1, they sum to {total:.6g}")
        ptotal = sum(self.products.values())
        if not math.isclose(ptotal, 1.0, abs_tol=1e-6):
            raise ValueError(f"product shares must sum to 1, they sum to {ptotal:.6g}")
        if not any(s.score_bad for s in self.segments.values() if s.share > 0) or all(
            s.score_bad for s in self.segments.values() if s.share > 0
        ):
            raise ValueError("score_bad must be true for some segments with a share and false "
                             "for others, so the score has something to discriminate")
        return self


class Repayment(Section):
    """Controlled self-exciting repayment (docs/model.md section 3), shared by all segments."""

    bucket_multiplier: dict[MultiplierName, NonNegative] = Field(
        default_factory=_default_bucket_multiplier,
        description="multiplies the whole repayment intensity (lambda_inf and the excess "
        "of every jump: payments, due date, paydays, bureau report, contacts) by delinquency "
        "bucket (old debt is harder to collect); 'agency' applies after charge-off. At a "
        "bucket boundary the intensity changes by the ratio of the two multipliers",
    )
    fatigue_factor: Probability = Field(
        0.7, description="each recent contact of a borrower shrinks the next impulse by this "
        "factor (1 = no fatigue)"
    )
    fatigue_memory_days: Positive = Field(
        3.0, description="time constant over which a contact stops counting as recent, day"
    )
    # At least a day: each payday is an event of every borrower, so a tiny period is a hang.
    payday_period_days: Annotated[float, Field(ge=1.0, le=3650.0)] = Field(
        30.0, description="days between paydays")
    bureau_report_dpd: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        30,
        description="days past due at which the delinquency is reported to the credit bureau "
        "(the segment's bureau_impulse applies then); null: never reported",
    )
    late_fee: NonNegative = Field(0.0, description="fee added to the amount past due, currency")
    charge_off_dpd: Annotated[int, Field(ge=2, le=3650)] = Field(
        180,
        description="days past due at which the account is written off (180 open-end, "
        "120 closed-end under US rules)",
    )


class Channel(Section):
    """Costs and effects of one contact channel (docs/model.md sections 5 and 8)."""

    enabled: bool = True
    cost: NonNegative = Field(description="cost per attempt, currency (agent calls: agent time)")
    delivery_prob: Probability = Field(1.0, description="probability an attempt reaches the device")
    attention_prob: Probability = Field(
        1.0,
        description="probability a delivered message is read or a robo-call answered "
        "(agent calls use the right-party-contact rate instead)",
    )
    impulse: NonNegative = Field(
        description="repayment intensity jump of an attended contact, 1/day"
    )
    intrusiveness: NonNegative = Field(description="pressure added by a delivered contact")
    optout_sensitivity: NonNegative = Field(
        0.0, description="opt-out hazard per unit of excess pressure at a delivered contact "
        "(electronic channels; an opt-out is permanent within the run and every rule pack "
        "honours it)"
    )


CHANNEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "push": dict(cost=0.0, delivery_prob=0.9, attention_prob=0.3, impulse=0.03,
                 intrusiveness=0.05, optout_sensitivity=0.02),
    "email": dict(cost=0.005, delivery_prob=0.95, attention_prob=0.2, impulse=0.03,
                  intrusiveness=0.05, optout_sensitivity=0.02),
    "sms": dict(cost=0.04, delivery_prob=0.97, attention_prob=0.8, impulse=0.08,
                intrusiveness=0.2, optout_sensitivity=0.02),
    "robocall": dict(cost=0.2, attention_prob=0.3, impulse=0.10, intrusiveness=0.5),
    "agent_call": dict(cost=0.0, impulse=0.5, intrusiveness=1.0),
}


def _channel(name: str) -> Any:
    return Field(default_factory=lambda: Channel(**CHANNEL_DEFAULTS[name]))


class Channels(Section):
    """The five channels, from least to most intrusive. A channel given in a file is
    merged over its own defaults."""

    push: Channel = _channel("push")
    email: Channel = _channel("email")
    sms: Channel = _channel("sms")
    robocall: Channel = _channel("robocall")
    agent_call: Channel = _channel("agent_call")
    unanswered_call_impulse: NonNegative = Field(
        0.01, description="intensity jump of a call that rang unanswered (a missed-call "
        "reminder); none when the borrower has gone dark on that channel"
    )
    unanswered_call_intrusiveness: NonNegative = Field(
        0.3, description="pressure added by a call that rang unanswered"
    )

    @model_validator(mode="before")
    @classmethod
    def _merge_channel_defaults(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: _deep_merge(CHANNEL_DEFAULTS[k], v)
                if k in CHANNEL_DEFAULTS and isinstance(v, dict) else v
                for k, v in value.items()}

    def get(self, name: str) -> Channel:
        return getattr(self, name)


class Shift(Section):
    """Agents on duty from ``start`` to ``end`` (hours of the day)."""

    start: Hour
    end: Hour
    fraction: Probability = Field(description="share of agents.count working this shift")

    @model_validator(mode="after")
    def _ordered(self) -> Shift:
        if self.end <= self.start:
            raise ValueError("end must be after start (shifts do not cross midnight)")
        return self


class RPCBand(Section):
    """Right-party-contact rate per dial from ``from_hour`` until the next band."""

    from_hour: Hour
    rate: Probability


class Agents(Section):
    """The collections floor: agents, shifts and call timing (docs/model.md section 8)."""

    count: Annotated[int, Field(ge=0, le=100_000)] = Field(12, description="agents employed")
    shifts: tuple[Shift, ...] = Field(
        default_factory=lambda: (
            Shift(start=8.0, end=14.0, fraction=0.5),
            Shift(start=14.0, end=20.0, fraction=0.5),
        ),
        description="shifts worked every day",
    )
    work_days: tuple[Annotated[int, Field(ge=0, le=6)], ...] = Field(
        (0, 1, 2, 3, 4, 5, 6), description="days of the week (day mod 7) the floor works"
    )
    cost_per_hour: NonNegative = Field(40.0, description="loaded cost of a staffed agent hour")
    ring_seconds: NonNegative = Field(30.0, description="agent time of a dial that is not answered")
    handle_minutes: LogNormal = Field(
        default_factory=lambda: LogNormal(mean=6.0, sigma=0.5),
        description="talk time of a right-party contact, minutes",
    )
    wrap_seconds: NonNegative = Field(45.0, description="after-call work of a connected call")
    rpc_by_hour: tuple[RPCBand, ...] = Field(
        default_factory=lambda: (
            RPCBand(from_hour=0, rate=0.03),
            RPCBand(from_hour=8, rate=0.12),
            RPCBand(from_hour=10, rate=0.10),
            RPCBand(from_hour=12, rate=0.15),
            RPCBand(from_hour=14, rate=0.10),
            RPCBand(from_hour=17, rate=0.18),
            RPCBand(from_hour=20, rate=0.14),
            RPCBand(from_hour=22, rate=0.04),
        ),
        description="right-party-contact rate per dial by hour of day, before the borrower's "
        "own answer propensity",
    )
    unmade_calls: Literal["carry_over", "drop"] = Field(
        "drop", description="calls still queued at the next decision epoch: kept (by priority) "
        "or dropped"
    )

    @field_validator("rpc_by_hour")
    @classmethod
    def _sorted_bands(cls, v: tuple[RPCBand, ...]) -> tuple[RPCBand, ...]:
        if not v or v[0].from_hour != 0:
            raise ValueError("the first band must start at from_hour 0")
        hours = [b.from_hour for b in v]
        if hours != sorted(set(hours)):
            raise ValueError("bands must be in increasing from_hour order, without repeats")
        return v


class Attrition(Section):
    """Pressure and what it costs: churn, complaints, going dark (docs/model.md section 7)."""

    pressure_half_life_days: Positive = Field(
        7.0, description="half-life of contact pressure, day"
    )
    churn_sensitivity: NonNegative = Field(
        0.03, description="churn hazard per unit of pressure above tolerance, at each contact"
    )
    complaint_sensitivity: NonNegative = Field(
        0.002, description="complaint hazard per unit of excess pressure and propensity"
    )
    dark_sensitivity: NonNegative = Field(
        0.02, description="hazard of going dark on the contacted channel per unit excess "
        "pressure. Going dark is permanent within the run: the borrower never again reads "
        "or answers that channel, and ignores its ring (an unanswered call then gives no "
        "missed-call impulse, though it still adds pressure)"
    )


class Promises(Section):
    """Promise-to-pay made on a right-party call (docs/model.md section 6)."""

    enabled: bool = True
    days: NonNegativeRange = Field(
        default_factory=lambda: NonNegativeRange(low=1, high=7),
        description="days from the call to the promised date (uniform)",
    )
    partial_prob: Probability = Field(
        0.3, description="probability that the promise covers only part of what is owed"
    )
    partial_fraction: Probability = Field(0.5, description="fraction promised when partial")
    full_covers_fees: bool = Field(
        True,
        description="a promise to pay in full is a promise to settle: kept, it pays what is "
        "owed on the promised date, a late fee added since it was made (a promise made "
        "before the due date) included. False: it pays the amount promised and the fee "
        "stays owed. A partial promise is always a fixed amount",
    )
    willingness_effect: NonNegative = Field(
        0.5, description="probit shift of the keep probability per unit of latent willingness"
    )


class Agency(Section):
    """Outside agency placement at charge-off."""

    enabled: bool = False
    commission: Probability = Field(0.30, description="share of agency recoveries it keeps")


RulePackName = Literal["cn-2026", "us-reg-f", "au-accc", "none"]


class Compliance(Section):
    """The rule pack the engine enforces (docs/model.md section 9)."""

    pack: RulePackName = Field("cn-2026", description="rule pack enforced on every contact")
    stop_after_churn: bool = Field(
        False,
        description="stop in-house contact once the customer churns (the 'churned' rule of "
        "every pack then blocks, and churned accounts leave the strategy's view). Default "
        "false: churn loses the customer's future business (CLV), not the receivable, so "
        "a churned customer who still owes is collected from as before",
    )


class Decision(Section):
    """When the strategy is asked for contact requests."""

    every_days: Annotated[int, Field(ge=1, le=365)] = Field(
        1, description="days between decision epochs (at 00:00)"
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)] = Field(
        60.0, description="wall-clock limit on one call of a strategy's code (loading and "
        "constructing it, view_columns(), decide(), learn()), seconds; plug-in code runs in "
        "a supervised child process that is killed past it, whatever the code does"
    )


class Metrics(Section):
    """Choices in how KPIs are measured."""

    warmup_days: NonNegative = Field(
        0.0,
        description="days at the start of the run left out of the flow KPIs (delinquency "
        "per statement, roll rates, collected, contacts, cost, churn, agent utilisation, "
        "service level), as in steady-state simulation; shorter than horizon_days; needs "
        "population.billing",
    )
    month_days: Annotated[float, Field(gt=0.0, le=365.0, allow_inf_nan=False)] = Field(
        30.0,
        description="days between two month-ends of the month-on-month roll rates of a "
        "living book (the first month-end is the end of the warm-up)",
    )

    wasted_window_days: Positive = Field(
        30.0,
        description="a contact is wasted when the account's no-contact twin paid in full "
        "within this many days after it",
    )


class StrategySpec(Section):
    """A strategy arm: a plug-in reference and its parameters."""

    use: str = Field(min_length=1, description="built-in name, module:Class or file.py:Class")
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = Field(None, description="name of the arm in results (default: use)")

    @property
    def name(self) -> str:
        return self.label or self.use


class Scenario(Section):
    """A complete, validated scenario."""

    name: str = Field("scenario", description="name of the scenario (default output folder)")
    description: str = Field("", description="free text")
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = Field(20261128, description="root seed")
    replications: Annotated[int, Field(ge=1, le=10_000)] = Field(
        1, description="replications; every arm of a replication shares its seed")
    horizon_days: Annotated[float, Field(gt=0, le=3650, allow_inf_nan=False)] = Field(
        180.0, description="simulated days"
    )
    currency: str = Field("CNY", description="currency unit of every amount")
    population: Population = Field(default_factory=Population)
    repayment: Repayment = Field(default_factory=Repayment)
    channels: Channels = Field(default_factory=Channels)
    agents: Agents = Field(default_factory=Agents)
    attrition: Attrition = Field(default_factory=Attrition)
    promises: Promises = Field(default_factory=Promises)
    agency: Agency = Field(default_factory=Agency)
    compliance: Compliance = Field(default_factory=Compliance)
    decision: Decision = Field(default_factory=Decision)
    metrics: Metrics = Field(default_factory=Metrics)
    strategies: tuple[StrategySpec, ...] = Field(
        default_factory=lambda: (StrategySpec(use="no_contact"),),
        description="arms compared on the same borrowers",
    )

    @field_validator("repayment")
    @classmethod
    def _arrears_before_charge_off(cls, value: Repayment, info: ValidationInfo) -> Repayment:
        pop = info.data.get("population")
        if pop is None:
            return value
        # The lowest days past due of each bucket: an account in it must not be written off.
        for bucket, low in zip(("M1", "M2", "M3", "M4"), (1, 31, 61, 91), strict=True):
            if getattr(pop.arrears, bucket) > 0 and value.charge_off_dpd <= low:
                raise ValueError(f"charge_off_dpd ({value.charge_off_dpd}) leaves no room for "
                                 f"population.arrears.{bucket} (accounts {low} or more days "
                                 "past due on day 0): set that share to 0 or charge off later")
        return value

    @field_validator("metrics")
    @classmethod
    def _warmup_inside_horizon(cls, value: Metrics, info: ValidationInfo) -> Metrics:
        horizon = info.data.get("horizon_days")
        if value.warmup_days > 0:
            pop = info.data.get("population")
            if pop is not None and not pop.billing.enabled:
                raise ValueError("warmup_days needs a living book: set "
                                 "population.billing.enabled to true")
            if horizon is not None and value.warmup_days >= horizon:
                raise ValueError(f"warmup_days ({value.warmup_days:g}) must be shorter than "
                                 f"horizon_days ({horizon:g})")
        return value

    @field_validator("strategies")
    @classmethod
    def _unique_names(cls, v: tuple[StrategySpec, ...]) -> tuple[StrategySpec, ...]:
        if not v:
            raise ValueError("at least one strategy is needed")
        names = [s.name for s in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"strategy names must be unique; repeated: {', '.join(dupes)} "
                             "(give each a label)")
        return v

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved scenario as plain data (what ``resolved.yaml`` holds)."""
        return self.model_dump(mode="json")


def _gives_arrears(value: Any) -> bool:
    """Whether a ``population.arrears`` value puts any account in arrears (None, an empty
    mapping or all-zero shares do not)."""
    if value is None:
        return False
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        return any(_gives_arrears(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_gives_arrears(v) for v in value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return True


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out
