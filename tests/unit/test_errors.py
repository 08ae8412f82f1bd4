from __future__ import annotations

import app.main  # noqa: F401 - imports every router, and with them every error class
from app.core.errors import DomainError, all_error_classes


def test_every_error_class_has_a_status_a_code_and_a_chinese_message() -> None:
    classes = all_error_classes()
    assert len(classes) > 20
    codes: dict[str, type[DomainError]] = {}
    for cls in classes:
        assert 400 <= cls.status < 600, cls
        assert cls.code and cls.code.isascii(), cls
        assert any("\u4e00" <= ch <= "\u9fff" for ch in cls.message), f"{cls.__name__} has no Chinese message"
        if cls is not DomainError and cls.code in codes and cls.__mro__[1] is not codes[cls.code]:
            raise AssertionError(f"code {cls.code} used by {cls.__name__} and {codes[cls.code].__name__}")
        codes.setdefault(cls.code, cls)
