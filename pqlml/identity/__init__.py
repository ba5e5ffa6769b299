"""Who belongs to which account, and when: users to accounts over time, then events to accounts.

A user's *base* account is, in order: the user's own ``account_id`` (an explicit group
id); else the account whose ``domain`` is the user's work-email domain (or, without an
accounts table, the domain itself). Free-mail users (gmail.com, outlook.com, proton.me,
...) never form an account: they keep a null ``account_id`` and still count as users for
user-level (PQL) features. Memberships (a ``memberships`` table, or a vendor export's
group calls) move users between accounts over time: an event belongs to the account its
user was in at the event's time, and a later move never changes an earlier cutoff
(:mod:`pqlml.identity._memberships`).

Every user and every event lands in exactly one counted route, recorded as a
:class:`~pqlml.validate.Finding`, so the report's counts add up to the input.
"""

from ._events import account_events
from ._memberships import (MEMBER_COLUMNS, member_then, members_at, membership_intervals,
                           static_members)
from ._users import (FREE_MAIL_DOMAINS, ascii_domains, email_domain, is_free_mail,
                     normalise_domain, user_accounts)

__all__ = ["FREE_MAIL_DOMAINS", "is_free_mail", "email_domain", "normalise_domain",
           "ascii_domains", "user_accounts",
           "membership_intervals", "static_members", "member_then", "members_at",
           "MEMBER_COLUMNS",
           "account_events"]
