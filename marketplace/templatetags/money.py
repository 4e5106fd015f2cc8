"""``{{ amount_minor|money:currency }}`` → "$500.00", "€12.50", "£3.00".

Amounts are stored in integer minor units (cents); the exponent says how
many minor units make one major unit in each currency (ISO 4217). Formatting
uses integer arithmetic only, so no amount ever passes through a float.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()

# ISO 4217 minor-unit exponents of the currencies listings may be priced in.
MINOR_UNIT_EXPONENT = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2}
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$"}


def currency_exponent(currency: str) -> int:
    return MINOR_UNIT_EXPONENT.get((currency or "USD").upper(), 2)


def format_money(amount_minor: int, currency: str = "USD", *, trim: bool = False) -> str:
    """Format an integer amount of minor units with its currency symbol and
    thousands separators: 1234567, "USD" → "$12,345.67". With ``trim``, whole
    amounts drop their zero decimals ("$10,000")."""
    code = (currency or "USD").upper()
    exponent = currency_exponent(code)
    sign = "−" if amount_minor < 0 else ""
    major, minor = divmod(abs(int(amount_minor)), 10**exponent)
    text = f"{major:,}"
    if exponent and not (trim and minor == 0):
        text += f".{minor:0{exponent}d}"
    symbol = SYMBOLS.get(code)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {code}"


def major_to_minor(amount: str, currency: str = "USD") -> int:
    """Parse an amount typed in major units ("12.50") into minor units (1250).
    Raises ValueError when it is not a number or has more decimals than the
    currency has minor units."""
    try:
        value = Decimal(str(amount).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"“{amount}” is not an amount.") from None
    if not value.is_finite():
        raise ValueError(f"“{amount}” is not an amount.")
    scaled = value.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"“{amount}” has more decimals than {currency.upper()} allows.")
    return int(scaled)


@register.filter
def money(amount_minor, currency: str = "USD") -> str:
    if amount_minor in (None, ""):
        return ""
    try:
        return format_money(int(amount_minor), str(currency or "USD"))
    except (TypeError, ValueError):
        return ""


@register.filter
def money_short(amount_minor, currency: str = "USD") -> str:
    """Like ``money``, without ".00" on whole amounts: "$10,000"."""
    if amount_minor in (None, ""):
        return ""
    try:
        return format_money(int(amount_minor), str(currency or "USD"), trim=True)
    except (TypeError, ValueError):
        return ""
