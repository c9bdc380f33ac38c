"""Names of the diagnoses the counter sends with a visit (2203) when only a code was typed."""
from __future__ import annotations

COMMON = {
    "I10": "原发性高血压",
    "E11": "2型糖尿病",
    "E11.9": "2型糖尿病不伴有并发症",
    "J06.9": "急性上呼吸道感染",
    "J00": "急性鼻咽炎（感冒）",
    "J20.9": "急性支气管炎",
    "K29.7": "胃炎",
    "K30": "功能性消化不良",
    "A09": "感染性腹泻",
    "M54.5": "腰痛",
    "I25.1": "动脉硬化性心脏病",
    "E78.5": "高脂血症",
    "R50.9": "发热",
}


def diagnosis_name(code: str) -> str:
    return COMMON.get(code) or COMMON.get(code.split(".")[0]) or code
