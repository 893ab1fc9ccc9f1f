"""Reading prices and currency codes as people write them, refusing what could be read two ways.

The rule for a price (digits, at most one decimal separator, optional thousands separators):

- spaces (also no-break and thin spaces) and apostrophes are only ever thousands separators: ``1 799``,
  ``1'799.50``;
- when both ``.`` and ``,`` appear, the last one is the decimal separator and the other groups thousands:
  ``1,799.00`` and ``1.799,00`` are both 1799;
- one kind appearing several times groups thousands: ``1,234,567``; thousands groups must be 3 digits after
  a first group of 1-3 digits that does not start with 0;
- a single ``.`` or ``,`` is the decimal separator, **unless** exactly 3 digits follow it and 1-3 digits not
  starting with 0 precede it: ``1,799`` or ``1.234`` could be either, and is refused (write ``1799`` or
  ``1799.00``); ``0.500`` and ``1234,567`` are read as decimals;
- nothing else: no signs, exponents, currency symbols, ``inf`` or ``nan``. A JSON number is taken as it is.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from knockoff.errors import CatalogError, ConfigError

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SPACES = re.compile(r"[ \u00a0\u202f\u2009'\u2019]")
_ALLOWED = re.compile(r"^[0-9][0-9.,\u00a0\u202f\u2009'\u2019 ]*$|^[.,][0-9]+$")
_GROUPED = re.compile(r"^[1-9][0-9]{0,2}(?:X[0-9]{3})+$")
_FIRST_GROUP = re.compile(r"^[1-9][0-9]{0,2}$")
_PLAIN = re.compile(r"^[0-9]*(?:\.[0-9]*)?$")


class PriceError(ConfigError):
    """A price that cannot be read, with the reason."""


def parse_price_text(value: str) -> float:
    """The number a price text means, by the rule in the module docstring; raises :class:`PriceError`."""
    text = value.strip()
    if not _ALLOWED.match(text):
        raise PriceError(f"not a number: {value!r}")
    spaced = _SPACES.search(text) is not None
    text = _SPACES.sub("X", text)
    separators = [c for c in text if c in ".,"]
    if not separators:
        return _number(_ungroup(text, value) if spaced else text, value)
    decimal = separators[-1]
    thousands = "," if decimal == "." else "."
    if separators.count(decimal) > 1:  # one kind several times: thousands only
        if decimal in separators and thousands in separators or spaced:
            raise PriceError(f"not a number: {value!r}")
        return _number(_ungroup(text.replace(decimal, "X"), value), value)
    whole, fraction = text.rsplit(decimal, 1)
    if thousands in whole or "X" in whole:
        whole = _ungroup(whole.replace(thousands, "X"), value)
    elif len(fraction) == 3 and _FIRST_GROUP.match(whole):
        raise PriceError(f"ambiguous: {value!r} could be {whole}{fraction} or {whole}.{fraction}; write it "
                         f"with its decimals (e.g. {whole}{fraction}.00) or without thousands separators")
    return _number(f"{whole}.{fraction}", value)


def _ungroup(text: str, original: str) -> str:
    """Digits grouped by thousands separators (written X) without them; raises when the grouping is wrong."""
    if "X" not in text:
        return text
    if not _GROUPED.match(text):
        raise PriceError(f"not a number: {original!r} (thousands separators must group 3 digits)")
    return text.replace("X", "")


def _number(text: str, original: str) -> float:
    if not _PLAIN.match(text) or text in ("", "."):
        raise PriceError(f"not a number: {original!r}")
    return float(text)


def parse_price(path: Path, line: int, value: str | int | float) -> float | None:
    """A row's price (None when empty); a :class:`CatalogError` naming the line and field otherwise."""
    if isinstance(value, str):
        if not value.strip():
            return None
        if value.strip().startswith("-") and _ALLOWED.match(value.strip()[1:]):
            raise CatalogError(path, f"must be a number >= 0, got {value!r}", line=line, field="price")
        try:
            price = parse_price_text(value)
        except PriceError as exc:
            raise CatalogError(path, str(exc), line=line, field="price") from None
    else:
        price = float(value)
    if not math.isfinite(price) or price < 0:
        raise CatalogError(path, f"must be a number >= 0, got {value!r}", line=line, field="price")
    return price


def parse_currency(path: Path, line: int, value: str) -> str | None:
    """A row's 3-letter currency code, upper-cased (None when empty)."""
    if not value:
        return None
    code = value.upper()
    if not _CURRENCY.match(code):
        raise CatalogError(path, f"expected a 3-letter code like USD, got {value!r}", line=line, field="currency")
    return code
