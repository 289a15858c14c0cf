"""The columns of the exceptions every output writes, their Chinese headers and the
disclaimer they carry.

A leaf (imports nothing of ours), so that the CSV writer, the workbook, the HTML report and the
import of returned spreadsheets share one list without importing each other.
"""

from __future__ import annotations

__all__ = [
    "CASE_COLUMNS",
    "CHINESE_HEADERS",
    "DISCLAIMER",
    "EXCEPTION_COLUMNS",
    "HEADER_COLUMNS",
]

EXCEPTION_COLUMNS = [
    "run_id",
    "case_id",
    "status",
    "rule_id",
    "severity",
    "scope",
    "household_key",
    "person_key",
    "name",
    "id_number_masked",
    "township",
    "village",
    "evidence_department",
    "evidence_records",
    "matched_name",
    "evidence",
    "match_probability",
    "outcome",
    "reason",
]
#: Internal columns carried with exceptions (history), not written to the CSV: the unit, the
#: hash of the evidence (a change reopens a cleared case) and the evidence as a cadre reads it
#: (Chinese field labels; the spreadsheet's 证据 column).
CASE_COLUMNS = ["unit_key", "evidence_hash", "evidence_zh"]

#: Chinese names of the exceptions.csv columns (the spreadsheet's headers where it has them).
CHINESE_HEADERS = {
    "run_id": "运行编号",
    "case_id": "疑点编号",
    "status": "状态",
    "rule_id": "规则",
    "severity": "类别",
    "scope": "范围",
    "household_key": "户编号",
    "person_key": "人员编号",
    "name": "姓名",
    "id_number_masked": "证件号码",
    "township": "乡镇",
    "village": "行政村",
    "evidence_department": "证据部门",
    "evidence_records": "证据记录号",
    "matched_name": "匹配姓名",
    "evidence": "比对证据",
    "match_probability": "匹配概率",
    "outcome": "核实结果",
    "reason": "核实说明",
}
#: Spreadsheet header → column, for reading returned workbooks: today's headers and those of
#: earlier versions (身份证号(脱敏), 村), so a workbook sent out before an upgrade still imports.
HEADER_COLUMNS = {v: k for k, v in CHINESE_HEADERS.items()} | {
    "身份证号(脱敏)": "id_number_masked",
    "村": "village",
    "问题": "problem",
    "证据": "evidence_zh",
    "关联把握": "confidence",
}

DISCLAIMER = (
    "本表所列为数据比对发现的疑点，不是认定结论：每一条都须由乡镇干部入户核实后方可处理。"
    " Flags are suspects for field verification, not verdicts: every case must be verified "
    "before any action is taken."
)
