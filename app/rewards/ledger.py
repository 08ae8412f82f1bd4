"""The reward ledger's rules: which money rows may follow which, so that no balance goes negative and no payment
exceeds what was approved. Pure: no I/O, imports neither FastAPI nor SQLAlchemy.

Rows are insert-only and in integer fen. Each row moves one of two accounts of one reward:

| kind               | account  | sign | allowed when                                                          |
|--------------------|----------|------|-----------------------------------------------------------------------|
| ``approval``       | approved | +    | nothing is approved yet (a reward is approved once; a lapse reopens)  |
| ``lapse``          | approved | −    | the whole approved amount, nothing paid: the reversing row of approval |
| ``payment``        | paid     | +    | exactly what is approved and not yet paid (a reward is paid whole)     |
| ``payment_reversal``| paid    | −    | exactly what was paid: a payment that did not reach the payee          |

A correction is never an edit: it is a reversing row that names the row it reverses. The balance of a reward is
derived from its rows alone (:func:`balance`); :func:`next_entry` is the only way the service makes a row, so the
invariants (0 ≤ paid ≤ approved) hold after every row by construction, and a property test checks it over random
sequences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from app.core.errors import Conflict


class EntryKind(StrEnum):
    APPROVAL = "approval"
    LAPSE = "lapse"
    PAYMENT = "payment"
    PAYMENT_REVERSAL = "payment_reversal"


class Account(StrEnum):
    APPROVED = "approved"
    PAID = "paid"


ACCOUNT_OF: dict[EntryKind, tuple[Account, int]] = {
    EntryKind.APPROVAL: (Account.APPROVED, +1),
    EntryKind.LAPSE: (Account.APPROVED, -1),
    EntryKind.PAYMENT: (Account.PAID, +1),
    EntryKind.PAYMENT_REVERSAL: (Account.PAID, -1),
}
# The kind a correction reverses.
REVERSES: dict[EntryKind, EntryKind] = {
    EntryKind.LAPSE: EntryKind.APPROVAL,
    EntryKind.PAYMENT_REVERSAL: EntryKind.PAYMENT,
}

MAX_FEN = 10**12


class LedgerViolation(Conflict):
    code = "ledger_violation"
    message = "该笔金额会使奖励账目不平，已拒绝"


@dataclass(frozen=True)
class Entry:
    sequence: int
    kind: EntryKind
    amount_fen: int  # signed: negative on reversing rows
    reverses: int | None = None  # the sequence of the row a correction reverses

    @property
    def account(self) -> Account:
        return ACCOUNT_OF[self.kind][0]


@dataclass(frozen=True)
class Balance:
    approved_fen: int = 0
    paid_fen: int = 0

    @property
    def outstanding_fen(self) -> int:
        return self.approved_fen - self.paid_fen


def balance(entries: Iterable[Entry]) -> Balance:
    approved = paid = 0
    for entry in entries:
        if entry.account is Account.APPROVED:
            approved += entry.amount_fen
        else:
            paid += entry.amount_fen
    return Balance(approved, paid)


def next_entry(entries: list[Entry], kind: EntryKind, amount_fen: int) -> Entry:
    """The row ``kind`` of ``amount_fen`` (given positive, stored signed) after ``entries``; raises
    :class:`LedgerViolation` when it would break the rules in the module doc."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or not 0 < amount_fen <= MAX_FEN:
        raise LedgerViolation(f"金额必须是 1–{MAX_FEN} 之间的整数（分），收到 {amount_fen!r}")
    now = balance(entries)
    if kind is EntryKind.APPROVAL and now.approved_fen != 0:
        raise LedgerViolation("该奖励已有核准金额，不能再次核准")
    if kind is EntryKind.LAPSE and (now.paid_fen != 0 or amount_fen != now.approved_fen):
        raise LedgerViolation("只能在未发放时冲销全部核准金额")
    if kind is EntryKind.PAYMENT and amount_fen != now.outstanding_fen:
        raise LedgerViolation(
            f"发放金额 {amount_fen} 分与待发放金额 {now.outstanding_fen} 分不符",
            outstanding_fen=now.outstanding_fen,
        )
    if kind is EntryKind.PAYMENT_REVERSAL and amount_fen != now.paid_fen:
        raise LedgerViolation("只能冲正全部已发放金额")
    sign = ACCOUNT_OF[kind][1]
    reverses = None
    if kind in REVERSES:
        target = REVERSES[kind]
        reverses = max(e.sequence for e in entries if e.kind is target)
    sequence = max((e.sequence for e in entries), default=0) + 1
    return Entry(sequence=sequence, kind=kind, amount_fen=sign * amount_fen, reverses=reverses)
