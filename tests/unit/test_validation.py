from __future__ import annotations

import pytest

from app.core.validation import (
    control_characters,
    credit_code_check_char,
    is_valid_credit_code,
    is_valid_resident_id,
)


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000600037341L"])
def test_published_credit_codes_are_valid(code: str) -> None:
    assert is_valid_credit_code(code)


def test_a_changed_character_breaks_the_check_digit() -> None:
    code = "91350100M000100Y43"
    for i in range(17):
        replacement = "1" if code[i] != "1" else "2"
        assert not is_valid_credit_code(code[:i] + replacement + code[i + 1 :])


def test_credit_code_alphabet_and_length() -> None:
    assert not is_valid_credit_code("91350100M000100Y4")
    assert not is_valid_credit_code("91350100M000100I43")
    body = "91441881MA4UL3001"
    assert is_valid_credit_code(body + credit_code_check_char(body))


def test_resident_id_check_digit() -> None:
    assert is_valid_resident_id("11010519491231002X")
    assert not is_valid_resident_id("110105194912310021")
    assert not is_valid_resident_id("11010519491231002")


def test_control_characters() -> None:
    assert control_characters("正常文本\n第二行", allow_newlines=True) == []
    assert control_characters("换行\n", allow_newlines=False) == ["\n"]
    assert control_characters("零宽\u200b字符", allow_newlines=True) == ["\u200b"]
