"""The code lists come from pycountry and never shrink: a code once accepted stays accepted."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from tracker.deals.events import Money
from tracker.deals.values import COUNTRY_CODES, CURRENCY_CODES

# The lists as written out by hand before pycountry supplied them (ISO 3166-1 alpha-2 as in the
# tz database's iso3166.tab; ISO 4217 active codes without XTS and XXX). Stored events
# name these codes, so a pycountry release that drops one must not drop it here.
COUNTRIES_BEFORE = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
VN VU WF WS YE YT ZA ZM ZW
"""
CURRENCIES_BEFORE = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER
ZAR ZMW ZWG ZWL
"""


def test_every_country_accepted_before_is_accepted() -> None:
    assert len(COUNTRIES_BEFORE.split()) == 249
    assert sorted(frozenset(COUNTRIES_BEFORE.split()) - COUNTRY_CODES) == []


def test_the_countries_are_the_officially_assigned_codes_only() -> None:
    # XK (Kosovo) and XX are user-assigned, UK and EU reserved, AN withdrawn: none is assigned.
    assert {"GB", "IT", "TR", "FR", "US", "SS", "BQ"} <= COUNTRY_CODES
    assert {"XK", "XX", "AN", "UK", "EU", "gb", ""}.isdisjoint(COUNTRY_CODES)
    assert all(len(code) == 2 and code.isascii() and code.isupper() for code in COUNTRY_CODES)


def test_every_currency_accepted_before_is_accepted() -> None:
    assert len(CURRENCIES_BEFORE.split()) == 180
    assert sorted(frozenset(CURRENCIES_BEFORE.split()) - CURRENCY_CODES) == []


def test_the_currencies_include_withdrawn_codes_and_exclude_non_money() -> None:
    # BGN and CUC are withdrawn from ISO 4217 (pycountry no longer lists them); old deals use them.
    assert {"EUR", "GBP", "USD", "XDR", "XAU", "BGN", "CUC", "ZWL"} <= CURRENCY_CODES
    assert {"XTS", "XXX", "DEM", "eur", ""}.isdisjoint(CURRENCY_CODES)
    assert all(len(code) == 3 and code.isascii() and code.isupper() for code in CURRENCY_CODES)


@pytest.mark.parametrize("currency", ["EUR", "XAU", "BGN"])
def test_money_accepts_a_listed_currency(currency: str) -> None:
    assert Money(amount=Decimal("1000"), currency=currency).currency == currency


def test_money_refuses_the_no_currency_code() -> None:
    with pytest.raises(ValidationError, match="must be an ISO 4217 currency code"):
        Money(amount=Decimal("1000"), currency="XXX")
