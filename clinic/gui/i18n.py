"""Every string the desk shows goes through `tr`: Chinese is the source text, English a lookup.

The language is chosen once at start (`set_language`, or CLINIC_LANG=en); a missing English
entry falls back to the Chinese, never to an empty label.
"""
from __future__ import annotations

import os

_lang = "en" if os.environ.get("CLINIC_LANG", "").lower().startswith("en") else "zh"

EN: dict[str, str] = {
    "村卫生室医保结算": "Village clinic insurance settlement",
    "培训模式 — 不产生真实费用": "TRAINING MODE — no real charges",
    "读卡 (F2)": "Read card (F2)",
    "身份证号": "ID number",
    "身份证号或扫码，回车": "ID number or scan, then Enter",
    "身份证号 / 电子凭证": "ID number / e-voucher",
    "查询": "Look up",
    "病人": "Patient",
    "姓名": "Name",
    "险种": "Insurance",
    "年龄": "Age",
    "账户余额": "Account balance",
    "诊断": "Diagnosis",
    "处方": "Prescription",
    "药品（拼音首字母）": "Drug (pinyin initials)",
    "例如 xbdp 查 硝苯地平": "e.g. xbdp finds 硝苯地平",
    "数量": "Qty",
    "天数": "Days",
    "自动": "auto",
    "添加 (Enter)": "Add (Enter)",
    "删除所选 (Del)": "Remove selected (Del)",
    "药品": "Drug",
    "规格": "Strength",
    "金额": "Amount",
    "合计": "Total",
    "处方审核": "Formulary check",
    "通过": "pass",
    "提醒": "warning",
    "禁止": "blocked",
    "结算": "Settlement",
    "预结算 (F5)": "Pre-settle (F5)",
    "结算 (F9)": "Settle (F9)",
    "下一位 (F12)": "Next patient (F12)",
    "医疗费总额": "Total medical fees",
    "统筹基金支付": "Pooled fund pays",
    "个人账户支付": "Personal account pays",
    "现金支付": "Cash to pay",
    "结算后账户余额": "Account balance after",
    "结算号": "Settlement no.",
    "收据": "Receipt",
    "打开收据": "Open receipt",
    "医保平台：{url}": "Insurer: {url}",
    "操作员：{name}": "Operator: {name}",
    "元": "yuan",
    "{n} 岁": "{n} yrs",
    "正在读卡……": "Reading the card…",
    "正在查询参保信息……": "Looking up the insured person…",
    "正在预结算……": "Pre-settling…",
    "正在结算……": "Settling…",
    "请先读卡或输入身份证号": "Read the card or type the ID number first",
    "请先添加药品": "Add at least one drug first",
    "已读取：{name}。请输入药品。": "Read: {name}. Enter the drugs.",
    "预结算完成，请核对金额后按 F9 结算": "Pre-settled. Check the amounts, then F9 to settle",
    "结算成功，请打印收据交给病人": "Settled. Print the receipt for the patient",
    "处方未通过审核：{msg}": "The prescription did not pass: {msg}",
    "确认结算": "Confirm settlement",
    "确认结算？\n\n医疗费总额 {total} 元\n现金支付 {cash} 元": "Settle now?\n\nTotal {total} yuan\nCash {cash} yuan",
    "取消": "Cancel",
    "已取消，未结算": "Cancelled, nothing settled",
    "继续的理由": "Reason to continue",
    "{msg}\n\n如确需继续，请填写理由：": "{msg}\n\nTo continue anyway, give a reason:",
    "处方已修改，请重新预结算": "The prescription changed; pre-settle again",
    "没有找到匹配的药品": "No matching drug",
    "系统内部错误，请联系管理员。": "Internal error; call the administrator.",
    "结果未知：请勿重复收费": "Outcome unknown: do not charge again",
    "正在处理，请稍候": "Working, please wait",
    "急诊处方（最多3天）": "Emergency prescription (max 3 days)",
    "拼音首字母或编码，如 gxy": "Pinyin initials or code, e.g. gxy",
    "请选择诊断（可输入拼音首字母，如 gxy）": "Choose a diagnosis (pinyin initials work, e.g. gxy)",
    "请先按 F5 预结算": "Press F5 to pre-settle first",
}


def set_language(lang: str) -> None:
    global _lang
    _lang = "en" if lang.lower().startswith("en") else "zh"


def language() -> str:
    return _lang


def tr(text: str, **kw: object) -> str:
    out = EN.get(text, text) if _lang == "en" else text
    return out.format(**kw) if kw else out
