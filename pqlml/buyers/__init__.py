"""Who to call: the buyer inside a qualified account, or word that the buyer is outside it.

A product-qualified *lead* (PQL) has its buyer among the active users: sell to that person. A
product-qualified *account* (PQA) has healthy usage but no buyer in the product: marketing and
sales must find an outside decision-maker. This stage answers, per account and ``as_of``:

* :func:`candidates` — the account's work-email users then, with the signals that mark a
  buyer (title, admin changes, invites, pricing / legal / security views, activity share,
  tenure);
* :class:`BuyerModel` — each user's probability of being the buyer and the account's
  ``buyer_in_product``, learnt from which user raised the hand or converted;
* :func:`evaluate_buyers` — top-1 / top-3 contact accuracy and the calibration of
  ``buyer_in_product``, forward in time, against the title-only and most-active baselines;
* :func:`contacts` / :func:`with_contacts` — the contact columns of the scores
  (``contact_user_id``, ``contact_email``, ``contact_title``, ``contact_reason``,
  ``buyer_in_product``, ``lead_bucket``), for the CRM only: never logged to MLflow.
"""

from ._candidates import BUYER_EVENTS, SIGNALS, buyer_examples, candidates, signal_events
from ._contacts import (CONTACT_COLUMNS, CONTACT_TIERS, LEAD_BUCKETS, contacts, fit_on_history,
                        user_reason, with_contacts)
from ._evaluate import PQA_THRESHOLD, BuyerEvaluation, evaluate_buyers
from ._model import BuyerModel, activity_score, rank_by, title_score

__all__ = ["BUYER_EVENTS", "SIGNALS", "signal_events", "candidates", "buyer_examples",
           "BuyerModel", "rank_by", "title_score", "activity_score", "BuyerEvaluation",
           "evaluate_buyers", "PQA_THRESHOLD", "CONTACT_COLUMNS", "CONTACT_TIERS", "LEAD_BUCKETS",
           "contacts", "with_contacts", "fit_on_history", "user_reason"]
