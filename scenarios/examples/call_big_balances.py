"""Call big balances past due, text the rest weekly, leave alone whoever complained."""

from collections.abc import Collection

import numpy as np
import pandas as pd
from pydantic import Field

from simulator.strategies import Strategy, StrategyParams, make_requests


class BigBalanceParams(StrategyParams):
    min_amount: float = Field(1000, ge=0, description="call accounts owing at least this")
    from_dpd: int = Field(3, ge=1, description="start calling at this many days past due")
    sms_spread_hours: float = Field(2.0, ge=0, le=8, description="SMS go out at 10:00 plus "
                                    "a random delay of up to this many hours")


class CallBigBalances(Strategy[BigBalanceParams]):
    """Agent calls to large amounts past due, largest first; a weekly SMS to the rest;
    no contact after a complaint."""

    name = "call_big_balances"
    description = "Agent calls for big balances, weekly SMS for the rest."
    Params = BigBalanceParams

    def __init__(self, params: BigBalanceParams | None = None,
                 rng: np.random.Generator | None = None):
        super().__init__(params, rng)
        self.complained: set[int] = set()  # kept across the epochs of one run

    def view_columns(self) -> Collection[str]:
        return ("dpd", "amount_due", "do_not_contact", "open_promise",
                "reachable_agent_call", "reachable_sms")

    def learn(self, outcomes: pd.DataFrame) -> None:
        self.complained.update(outcomes.loc[outcomes["event"] == "complaint", "account_id"])

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        late = accounts[(accounts.dpd >= 1) & ~accounts.do_not_contact & ~accounts.open_promise
                        & ~accounts.index.isin(list(self.complained))]
        big = late[(late.amount_due >= self.params.min_amount)
                   & (late.dpd >= self.params.from_dpd) & late.reachable_agent_call]
        rest = late[(late.amount_due < self.params.min_amount) & (late.dpd % 7 == 1)
                    & late.reachable_sms]
        hours = 10 + self.rng.uniform(0, self.params.sms_spread_hours, len(rest))
        return pd.concat([make_requests(big.index, "agent_call", 9, priority=-big.amount_due),
                          make_requests(rest.index, "sms", hours)], ignore_index=True)
