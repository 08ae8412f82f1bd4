"""Payment channels behind one interface. Pure: no I/O of its own, imports neither FastAPI nor SQLAlchemy.

Today every channel is *recorded by hand*: the money moves outside this system (a bank transfer from the finance
office, cash against a receipt, a transfer made in WeChat Pay's merchant console) and the payer records it with
the channel's own reference. The interface is shaped for a channel that moves the money itself, WeChat Pay's
merchant transfer (商家转账) being the next one:

- amounts are integer fen, as WeChat Pay takes them;
- :func:`out_bill_no` is ours, derived from the reward and the attempt number, so a retried request of the same
  attempt carries the same bill number and WeChat Pay answers the first result instead of paying twice;
- a transfer can end ``pending``: WeChat asks the user to confirm within 24 hours
  (:data:`USER_CONFIRMATION_WINDOW`), and the reward stays ``claimed`` until the channel's callback says
  ``succeeded`` (then the payment row and ledger row are written) or the window passes (a new attempt, a new
  bill number).

A channel that moves money would implement :class:`PaymentChannel` with a network call in ``pay``; the service
already writes a payment and a ledger row only for ``succeeded`` and keeps the attempt counter on the reward.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

from app.core.errors import InvalidInput

USER_CONFIRMATION_WINDOW = timedelta(hours=24)
_REFERENCE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_\-/]{3,63}")


class ChannelCode(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    WECHAT_TRANSFER = "wechat_transfer"
    CASH = "cash"


CHANNEL_NAMES = {
    ChannelCode.BANK_TRANSFER: "银行转账",
    ChannelCode.WECHAT_TRANSFER: "微信转账",
    ChannelCode.CASH: "现金",
}


class PaymentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"  # e.g. waiting for the user's confirmation in WeChat
    FAILED = "failed"


class InvalidPaymentReference(InvalidInput):
    code = "invalid_payment_reference"
    message = "付款凭证号不合法（4–64 位字母、数字或 _ - /）"


@dataclass(frozen=True)
class PaymentInstruction:
    out_bill_no: str
    amount_fen: int
    payee_name: str
    payee_account: str | None
    payee_bank: str | None


@dataclass(frozen=True)
class PaymentOutcome:
    status: PaymentStatus
    reference: str


class PaymentChannel(Protocol):
    code: ChannelCode

    def pay(self, instruction: PaymentInstruction, reference: str | None) -> PaymentOutcome:
        """Move (or record) the money of ``instruction``; ``reference`` is what the payer typed, for channels
        recorded by hand."""
        ...


@dataclass(frozen=True)
class RecordedByHand:
    """A payment made outside the system and recorded with its reference (the bank's 交易流水号, the cash
    receipt number, the WeChat transfer bill number)."""

    code: ChannelCode

    def pay(self, instruction: PaymentInstruction, reference: str | None) -> PaymentOutcome:
        if reference is None or not _REFERENCE.fullmatch(reference):
            raise InvalidPaymentReference(field="reference")
        return PaymentOutcome(PaymentStatus.SUCCEEDED, reference)


CHANNELS: dict[ChannelCode, PaymentChannel] = {code: RecordedByHand(code) for code in ChannelCode}


def out_bill_no(reward_id: uuid.UUID, attempt: int) -> str:
    """Our bill number for one payment attempt: 28 letters and digits (WeChat Pay takes 5–32), the same for every
    retry of that attempt."""
    return f"RW{reward_id.hex[:24].upper()}{attempt:02d}"
