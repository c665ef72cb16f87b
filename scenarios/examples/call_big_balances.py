"""Call the biggest balances from day 3 past due; text everyone else once a week."""

import pandas as pd
from pydantic import Field

from simulator.strategies import Strategy, StrategyParams, make_requests


class Params(StrategyParams):
    min_amount: float = Field(1000, description="call accounts owing at least this")
    from_dpd: int = Field(3, description="start calling at this many days past due")


class CallBigBalances(Strategy[Params]):
    """Agent calls to large amounts past due, largest first; a weekly SMS to the rest."""

    name = "call_big_balances"
    description = "Agent calls for big balances, weekly SMS for the rest."
    Params = Params

    def decide(self, day: int, accounts: pd.DataFrame) -> pd.DataFrame:
        late = accounts[(accounts.dpd >= 1) & ~accounts.do_not_contact & ~accounts.open_promise]
        big = late[(late.amount_due >= self.params.min_amount) & (late.dpd >= self.params.from_dpd)
                   & late.reachable_agent_call]
        rest = late[(late.amount_due < self.params.min_amount) & (late.dpd % 7 == 1)
                    & late.reachable_sms]
        return pd.concat([make_requests(big.index, "agent_call", 9, priority=-big.amount_due),
                          make_requests(rest.index, "sms", 10)], ignore_index=True)
