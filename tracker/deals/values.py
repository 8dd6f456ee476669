"""Reference code lists, from pycountry's copy of the ISO standards, so validation never needs
the network.

Django-free: the event catalogue and the Organisation model both validate against these.
"""

from __future__ import annotations

import pycountry

# ISO 3166-1 alpha-2: the officially assigned codes. User-assigned codes (XK and the like) are
# not accepted.
COUNTRY_CODES: frozenset[str] = frozenset(country.alpha_2 for country in pycountry.countries)

# The test code XTS and the "no currency" code XXX are left out: money always has a real
# currency here.
_NOT_MONEY = frozenset({"XTS", "XXX"})

# Codes ISO 4217 has withdrawn that were accepted before: pycountry drops a code when ISO
# withdraws it, but stored events and old deals still name it. A code, once accepted, stays
# accepted (tests/deals/test_values.py holds the list this began with).
WITHDRAWN_CURRENCY_CODES: frozenset[str] = frozenset({"ANG", "BGN", "CUC", "SLL", "ZWL"})

# ISO 4217 active codes, including funds and precious metals, and the withdrawn ones above.
CURRENCY_CODES: frozenset[str] = (
    frozenset(currency.alpha_3 for currency in pycountry.currencies) - _NOT_MONEY
) | WITHDRAWN_CURRENCY_CODES
