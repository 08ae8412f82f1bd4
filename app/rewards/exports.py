"""CSV and XLSX exports of the auditors' search, streamed: rows are read in batches and written as they come, so a
large export holds neither the whole result in memory nor a long transaction.

CSV is UTF-8 with a BOM (Excel opens it as UTF-8) and streams line by line. XLSX uses openpyxl's write-only
workbook, which spills rows to a temporary file as they are appended; the finished file is then streamed in chunks.
Amounts are exact: fen as integers, and yuan as decimals with two places (never floats).
"""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from app.deadlines.calendar import CHINA_TZ
from app.rewards.lifecycle import STATE_NAMES, RewardState
from app.rewards.schemas import RewardSummary

COLUMNS = (
    "奖励编号",
    "案件编号",
    "阶段",
    "状态",
    "承办部门",
    "行业领域",
    "举报类别",
    "政策",
    "政策版本",
    "核定金额（分）",
    "核定金额（元）",
    "核准金额（分）",
    "核准金额（元）",
    "生成时间",
    "核准时间",
    "领奖截止",
    "发放时间",
    "领奖人（脱敏）",
    "证件号（脱敏）",
    "开户银行",
    "收款账号（脱敏）",
)
STAGE_NAMES = {"verification": "核实奖励", "penalty": "处罚决定后奖励"}
_CHUNK = 64 * 1024


def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen) / 100


def _when(moment: Any) -> str:
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def row_of(item: RewardSummary) -> list[Any]:
    payee = item.payee
    return [
        item.number,
        item.case_number,
        STAGE_NAMES.get(item.stage, item.stage),
        STATE_NAMES[RewardState(item.state)],
        item.department.name if item.department else "",
        item.category_code,
        item.case_kind,
        item.policy.code,
        item.policy.version,
        item.amount_fen,
        _yuan(item.amount_fen),
        item.approved_fen,
        _yuan(item.approved_fen),
        _when(item.created_at),
        _when(item.approved_at),
        _when(item.claim_deadline),
        _when(item.paid_at),
        payee.name if payee else "",
        payee.id_number if payee else "",
        payee.bank_name if payee else "",
        payee.account_number if payee else "",
    ]


async def csv_stream(batches: AsyncIterator[list[RewardSummary]]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield ("\ufeff" + buffer.getvalue()).encode()
    async for batch in batches:
        buffer.seek(0)
        buffer.truncate()
        for item in batch:
            writer.writerow(["" if value is None else value for value in row_of(item)])
        yield buffer.getvalue().encode()


async def xlsx_stream(batches: AsyncIterator[list[RewardSummary]]) -> AsyncIterator[bytes]:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("举报奖励")
    sheet.append(list(COLUMNS))
    yuan_columns = {COLUMNS.index("核定金额（元）"), COLUMNS.index("核准金额（元）")}
    async for batch in batches:
        for item in batch:
            cells = []
            for index, value in enumerate(row_of(item)):
                cell = WriteOnlyCell(sheet, value=value)
                if index in yuan_columns:
                    cell.number_format = "0.00"
                cells.append(cell)
            sheet.append(cells)
    with tempfile.TemporaryFile() as spool:
        await asyncio.to_thread(workbook.save, spool)
        spool.seek(0)
        while chunk := await asyncio.to_thread(spool.read, _CHUNK):
            yield chunk
