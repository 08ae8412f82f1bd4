"""The reward ledger's rules, by hand and as properties over random sequences of rows (valid and invalid)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.rewards.ledger import Account, Balance, Entry, EntryKind, LedgerViolation, balance, next_entry

K = EntryKind


def _post(entries: list[Entry], kind: EntryKind, amount: int) -> list[Entry]:
    return [*entries, next_entry(entries, kind, amount)]


def test_the_life_of_a_paid_reward() -> None:
    rows = _post([], K.APPROVAL, 1_500_000)
    rows = _post(rows, K.PAYMENT, 1_500_000)
    assert balance(rows) == Balance(1_500_000, 1_500_000)
    assert [(e.sequence, e.kind, e.amount_fen, e.account) for e in rows] == [
        (1, K.APPROVAL, 1_500_000, Account.APPROVED),
        (2, K.PAYMENT, 1_500_000, Account.PAID),
    ]


def test_corrections_are_reversing_rows_that_name_what_they_reverse() -> None:
    rows = _post(_post(_post([], K.APPROVAL, 500), K.PAYMENT, 500), K.PAYMENT_REVERSAL, 500)
    assert rows[-1] == Entry(3, K.PAYMENT_REVERSAL, -500, reverses=2)
    rows = _post(rows, K.PAYMENT, 500)
    assert balance(rows) == Balance(500, 500)
    lapsed = _post(_post([], K.APPROVAL, 800), K.LAPSE, 800)
    assert lapsed[-1] == Entry(2, K.LAPSE, -800, reverses=1) and balance(lapsed) == Balance(0, 0)


@pytest.mark.parametrize(
    ("history", "kind", "amount"),
    [
        ([], K.PAYMENT, 100),  # nothing approved
        ([(K.APPROVAL, 100)], K.APPROVAL, 100),  # approved twice
        ([(K.APPROVAL, 100)], K.PAYMENT, 101),  # more than approved
        ([(K.APPROVAL, 100)], K.PAYMENT, 99),  # a reward is paid whole
        ([(K.APPROVAL, 100), (K.PAYMENT, 100)], K.PAYMENT, 100),  # paid twice
        ([(K.APPROVAL, 100), (K.PAYMENT, 100)], K.LAPSE, 100),  # lapse after payment
        ([(K.APPROVAL, 100)], K.LAPSE, 50),  # a lapse reverses the whole approval
        ([], K.PAYMENT_REVERSAL, 100),  # nothing paid
        ([(K.APPROVAL, 100)], K.APPROVAL, 0),  # zero
        ([(K.APPROVAL, 100)], K.PAYMENT, -100),  # negative
    ],
)
def test_rows_that_would_unbalance_the_ledger_are_refused(
    history: list[tuple[EntryKind, int]], kind: EntryKind, amount: int
) -> None:
    rows: list[Entry] = []
    for k, a in history:
        rows = _post(rows, k, a)
    with pytest.raises(LedgerViolation):
        next_entry(rows, kind, amount)


def test_amounts_must_be_integers() -> None:
    with pytest.raises(LedgerViolation):
        next_entry([], K.APPROVAL, 1.5)  # type: ignore[arg-type]
    with pytest.raises(LedgerViolation):
        next_entry([], K.APPROVAL, True)


ATTEMPT = st.tuples(st.sampled_from(EntryKind), st.integers(-10, 10**7) | st.sampled_from(["exact"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(ATTEMPT, max_size=40))
def test_property_no_negative_balance_and_never_paid_above_approved(attempts: list[tuple[EntryKind, object]]) -> None:
    """Random rows, most of them wrong: each is either refused with nothing changed, or appended; after every row
    both balances are non-negative and what is paid never exceeds what is approved; sequences are contiguous."""
    rows: list[Entry] = []
    for kind, amount in attempts:
        now = balance(rows)
        if amount == "exact":  # the amount a valid row of this kind would need, so valid rows happen often
            amount = {
                K.APPROVAL: 1_000,
                K.LAPSE: now.approved_fen,
                K.PAYMENT: now.outstanding_fen,
                K.PAYMENT_REVERSAL: now.paid_fen,
            }[kind]
        assert isinstance(amount, int)
        try:
            entry = next_entry(rows, kind, amount)
        except LedgerViolation:
            assert balance(rows) == now
            continue
        rows.append(entry)
        after = balance(rows)
        assert after.approved_fen >= 0 and after.paid_fen >= 0
        assert after.paid_fen <= after.approved_fen
        assert [e.sequence for e in rows] == list(range(1, len(rows) + 1))
        if entry.reverses is not None:
            reversed_row = rows[entry.reverses - 1]
            assert reversed_row.amount_fen == -entry.amount_fen


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=10))
def test_property_paying_what_was_approved_balances_to_zero_outstanding(amounts: list[int]) -> None:
    for amount in amounts:
        rows = _post(_post([], K.APPROVAL, amount), K.PAYMENT, amount)
        assert balance(rows).outstanding_fen == 0
