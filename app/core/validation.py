"""Pure checks of identifiers and text that several parts of the domain share."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Annotated

from pydantic import BeforeValidator

# GB 32100-2015 统一社会信用代码: 18 characters from this alphabet (no I, O, Z, S, V); the last is a check digit.
_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_check_char(first17: str) -> str:
    total = sum(_CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_ALPHABET[(31 - total % 31) % 31]


def is_valid_credit_code(code: str) -> bool:
    if len(code) != 18 or any(c not in _CREDIT_ALPHABET for c in code):
        return False
    return credit_code_check_char(code[:17]) == code[17]


# GB 11643-1999 居民身份证号码: 17 digits and a check character (0-9 or X), ISO 7064 MOD 11-2.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def is_valid_resident_id(number: str) -> bool:
    if len(number) != 18 or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17]


def control_characters(text: str, *, allow_newlines: bool) -> list[str]:
    """Control and format characters that have no place in user text (line breaks allowed where asked)."""
    allowed = {"\n", "\r", "\t"} if allow_newlines else set()
    return [c for c in text if c not in allowed and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")]


# Dates and times in query strings are ISO 8601 text, as the schema says (format: date / date-time). Pydantic's lax
# mode would also take a number as seconds since 1970, so `date_to=0` read as 1970-01-01 (found by schemathesis).
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}.*")


def _iso_text(pattern: re.Pattern[str], what: str) -> BeforeValidator:
    def check(value: object) -> object:
        if isinstance(value, str) and not pattern.fullmatch(value):
            raise ValueError(f"须为 ISO 8601 {what}")
        return value

    return BeforeValidator(check)


IsoDate = Annotated[date, _iso_text(_ISO_DATE, "日期（YYYY-MM-DD）")]
IsoDateTime = Annotated[datetime, _iso_text(_ISO_DATE_TIME, "时间（YYYY-MM-DDTHH:MM:SS+08:00）")]


def _whole_number(value: object) -> object:
    # JSON Schema counts 5.0 as an integer, and so do JSON libraries that write every number as a float; strict
    # integer fields (which refuse "5" and true) take it as 5, and still refuse 5.5.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = BeforeValidator(_whole_number)
