"""The campaign statistics table (统计表) as XLSX (one sheet by department, one by township) and as CSV."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font

from app.statistics.schemas import CampaignRow, CampaignTable

HEADER = ("单位", "收到举报", "受理", "核查属实", "整改完成", "办结", "发放奖励（件）", "发放奖励（元）")
SHEET_NAMES = {"department": "按部门", "township": "按镇街"}


def _cells(row: CampaignRow) -> list[object]:
    return [
        row.name,
        row.received,
        row.accepted,
        row.verified_true,
        row.rectified,
        row.closed,
        row.rewards_paid,
        Decimal(row.rewards_paid_fen) / 100,
    ]


def xlsx(tables: list[CampaignTable], title: str) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for table in tables:
        sheet = workbook.create_sheet(SHEET_NAMES[table.by])
        sheet.append([title])
        sheet.append(
            [f"统计期间：{table.date_from.isoformat()} 至 {table.date_to.isoformat()}（按举报提交时间，北京时间）"]
        )
        sheet.append(list(HEADER))
        for row in [*table.rows, table.total]:
            sheet.append(_cells(row))
            sheet.cell(sheet.max_row, len(HEADER)).number_format = "0.00"
        sheet.cell(1, 1).font = Font(bold=True, size=14)
        for cell in sheet[3]:
            cell.font = Font(bold=True)
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
        sheet.column_dimensions["A"].width = 28
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_text(table: CampaignTable) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for row in [*table.rows, table.total]:
        writer.writerow(_cells(row))
    return ("\ufeff" + buffer.getvalue()).encode()
