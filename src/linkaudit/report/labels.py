"""Chinese words of the outputs people read: field labels, case statuses, severities, scopes,
outcomes, ID statuses and match-confidence bands. Data in one place (a leaf: imports nothing of
ours), so the spreadsheet, the report and `explain` say the same thing the same way.

A canonical field without a label here is shown with the department's own column header (the
manifest's `fields:` value), else its canonical name: never left out.
"""

from __future__ import annotations

__all__ = [
    "FIELD_LABELS",
    "ID_STATUS_ZH",
    "OUTCOME_ZH",
    "SCOPE_ZH",
    "SEVERITY_ZH",
    "STATUS_ZH",
    "confidence_band",
]

#: Canonical fields (config.py, the shipped rules' evidence) → the label a cadre reads.
FIELD_LABELS: dict[str, str] = {
    "name": "姓名",
    "id_number": "证件号码",
    "id_status": "证件号码状态",
    "birth_date": "出生日期",
    "sex": "性别",
    "address": "住址",
    "relation": "与户主关系",
    "township": "乡镇",
    "village": "行政村",
    "household_size": "家庭人口数",
    "income_per_capita": "人均纯收入(元)",
    "identified_year": "识别年度",
    "poverty_status": "贫困户状态",
    "exit_year": "脱贫年度",
    "employer": "工作单位",
    "employer_type": "单位性质",
    "employment_status": "人员状态",
    "start_date": "参加工作时间",
    "end_date": "终止日期",
    "plate": "号牌",
    "vehicle_type": "车辆类型",
    "vehicle_status": "状态",
    "registered_on": "登记日期",
    "location": "坐落",
    "property_type": "房屋类型",
    "area": "建筑面积(㎡)",
    "entity_name": "主体名称",
    "entity_type": "主体类型",
    "entity_status": "登记状态",
    "death_date": "死亡日期",
    "self_paid": "个人自付(元)",
    "total_cost": "医疗总费用(元)",
    "amount": "金额(元)",
    "settled_on": "结算日期",
}

#: Case statuses against the baseline run (history.STATUSES).
STATUS_ZH = {"new": "新增", "persisting": "持续", "reopened": "重现"}
SEVERITY_ZH = {"ineligible": "不符合条件", "risk": "风险", "data_quality": "数据质量"}
SCOPE_ZH = {"person": "个人", "household": "家庭"}
#: Field outcomes (history.OUTCOMES) as the drop-down offers them; import reads both.
OUTCOME_ZH = {"confirmed": "属实", "cleared": "不属实", "pending": "待核实"}
#: ID statuses (vocabulary.ID_STATUSES) in evidence text.
ID_STATUS_ZH = {
    "valid": "有效",
    "upgraded_15": "15位旧号(已升位)",
    "bad_checksum": "校验位错误",
    "malformed": "格式错误",
    "future_birth": "出生日期晚于审计日",
    "float_damaged": "被科学计数法损坏",
    "missing": "缺失",
}

#: Match probability bands, highest first: (lower bound, word).
CONFIDENCE_BANDS = ((0.99, "很高"), (0.95, "高"), (0.0, "中"))


def confidence_band(probability: float | None) -> str:
    """'很高 99.9%' for a link's match probability; '' when the flag needs no link."""
    if probability is None:
        return ""
    word = next(w for bound, w in CONFIDENCE_BANDS if probability >= bound)
    pct = probability * 100
    text = f"{pct:.1f}" if pct < 99.95 or pct >= 100 else "99.9"
    return f"{word} {text.removesuffix('.0')}%"
