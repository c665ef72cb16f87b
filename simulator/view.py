"""The strategy's view of the book: observable columns of open accounts only.

Built as a fresh DataFrame at each decision epoch from copies of observable arrays, so
a strategy can neither see latent columns nor change the book.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.book import DELINQUENT, OUTCOMES, Book, bucket_of_dpd
from simulator.scenario import BUCKETS, CHANNELS, PRODUCTS

#: Column name -> meaning, as documented in the README.
VIEW_COLUMNS: dict[str, str] = {
    "status": "'pre_due' (statement issued, not yet due) or 'delinquent'",
    "dpd": "days past due today (0 on the due date, negative before it)",
    "bucket": "delinquency bucket: M0 (not past due), M1 1-30, M2 31-60, M3 61-90, M4 91+",
    "due_day": "day of the statement due date",
    "amount_due": "amount owed now: the instalment before the due date, the amount past due after",
    "amount_delinquent": "amount past due when the account became delinquent (0 before)",
    "balance": "outstanding balance, including instalments not yet due",
    "credit_line": "credit line",
    "paid_so_far": "paid towards this statement since it was issued",
    "score": "credit score (higher is safer)",
    "prior_delinquencies": "earlier delinquencies on file",
    "tenure_months": "months since the account was opened",
    "product": "product scenario: shopping, education, travel or medical",
    "clv_estimate": "the lender's estimate of the customer's lifetime value",
    "contacts_total": "contact attempts executed so far, all channels",
    "contacts_<channel>": "contact attempts executed so far on the channel",
    "last_<channel>": "time (day) of the last executed attempt on the channel; NaN if none",
    "last_outcome": "outcome of the last executed contact: " + ", ".join(OUTCOMES),
    "right_party_contacts": "agent calls that reached the borrower",
    "open_promise": "a promise to pay is open",
    "promise_day": "day the open promise falls due (NaN if none)",
    "promise_amount": "amount of the open promise (0 if none)",
    "promises_made": "promises to pay made so far",
    "promises_broken": "promises to pay broken so far",
    "reachable_<channel>": "the channel is on file and the borrower has not opted out of it",
    "do_not_contact": "the account is on the do-not-contact register",
}


def build_view(book: Book, day: float) -> pd.DataFrame:
    """Observable state of every open account at time ``day`` (index: account_id)."""
    s, o = book.state, book.observable
    idx = np.flatnonzero(book.open_mask())
    dpd = np.floor(day - o.due_day[idx]).astype(np.int64)
    status = (s.status[idx] == DELINQUENT).astype(np.int8)
    contacts = s.contacts[idx]
    last = s.last_contact[idx]
    reachable = o.on_file[idx] & ~s.opted_out[idx]
    promise_open = np.isfinite(s.t_promise[idx])
    data: dict[str, object] = {
        "status": pd.Categorical.from_codes(status, ["pre_due", "delinquent"]),
        "dpd": dpd,
        "bucket": pd.Categorical.from_codes(bucket_of_dpd(dpd.astype(float)), BUCKETS),
        "due_day": o.due_day[idx].astype(np.int64),
        "amount_due": s.owed[idx],
        "amount_delinquent": s.amount_delinquent[idx],
        "balance": s.balance[idx],
        "credit_line": o.credit_line[idx],
        "paid_so_far": s.paid_in_house[idx],
        "score": o.score[idx],
        "prior_delinquencies": o.prior_delinquencies[idx],
        "tenure_months": o.tenure_months[idx],
        "product": pd.Categorical.from_codes(o.product[idx], PRODUCTS),
        "clv_estimate": o.clv_estimate[idx],
        "contacts_total": contacts.sum(axis=1),
    }
    for c, name in enumerate(CHANNELS):
        data[f"contacts_{name}"] = contacts[:, c]
    for c, name in enumerate(CHANNELS):
        data[f"last_{name}"] = np.where(np.isfinite(last[:, c]), last[:, c], np.nan)
    data.update({
        "last_outcome": pd.Categorical.from_codes(s.last_outcome[idx], OUTCOMES),
        "right_party_contacts": s.right_party_contacts[idx],
        "open_promise": promise_open,
        "promise_day": np.where(promise_open, s.t_promise[idx], np.nan),
        "promise_amount": np.where(promise_open, s.promise_amount[idx], 0.0),
        "promises_made": s.promises_made[idx],
        "promises_broken": s.promises_broken[idx],
    })
    for c, name in enumerate(CHANNELS):
        data[f"reachable_{name}"] = reachable[:, c]
    data["do_not_contact"] = o.do_not_contact[idx]
    # Every column is a fresh array gathered above, so the frame need not copy it again.
    frame = pd.DataFrame(data, index=pd.Index(idx, name="account_id"), copy=False)
    return frame
