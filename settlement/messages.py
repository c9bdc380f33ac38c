"""Typed values <-> the platform's `input` / `output` nodes, field for field (protocol.md §2).

Only this module (and the simulator) spells the wire names of the outpatient transactions.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .money import to_fen, to_wire
from .values import Credential, FeeLine, Person, SetlInfo, Split

SPLIT_FIELDS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
                "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "fund_pay_sumamt", "psn_part_amt",
                "acct_pay", "psn_cash_pay", "hosp_part_amt", "balc")


class MessageError(ValueError):
    """An answer whose content does not make sense (missing field, broken identity)."""


def _ts(now: datetime) -> str:
    return now.strftime("%Y-%m-%d %H:%M:%S")


def sign_in(opter: str, mac: str, ip: str) -> dict[str, Any]:
    return {"signIn": {"opter_no": opter, "mac": mac, "ip": ip}}


def parse_sign_in(output: Any) -> tuple[str, str]:
    try:
        node = output["signinoutb"]
        return str(node["sign_no"]), str(node["sign_time"])
    except (KeyError, TypeError) as exc:
        raise MessageError(f"9001 answer lacks signinoutb: {exc}") from exc


def person_query(cred: Credential, now: datetime) -> dict[str, Any]:
    return {"data": {
        "mdtrt_cert_type": cred.mdtrt_cert_type, "mdtrt_cert_no": cred.mdtrt_cert_no,
        "card_sn": cred.card_sn, "begntime": _ts(now), "psn_cert_type": "01",
        "certno": cred.certno, "psn_name": cred.psn_name,
    }}


def parse_person(output: Any) -> Person:
    try:
        base = output["baseinfo"]
        insu = output.get("insuinfo") or []
        # Prefer an insurance in normal state ("1"); a suspended one is still shown to the worker.
        chosen = next((i for i in insu if str(i.get("psn_insu_stas")) == "1"), insu[0] if insu else None)
        if chosen is None:
            raise MessageError("1101 answer has no insuinfo")
        brdy = base.get("brdy")
        return Person(
            psn_no=str(base["psn_no"]), psn_name=str(base["psn_name"]), certno=str(base["certno"]),
            gend=str(base.get("gend", "")),
            brdy=date.fromisoformat(str(brdy)[:10]) if brdy else None,
            age=int(Decimal(str(base.get("age", 0)))),
            insutype=str(chosen["insutype"]), psn_type=str(chosen.get("psn_type", "")),
            psn_insu_stas=str(chosen.get("psn_insu_stas", "")),
            balc_fen=to_fen(chosen.get("balc", 0)),
            insuplc_admdvs=str(chosen.get("insuplc_admdvs", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"1101 answer unreadable: {exc}") from exc


def registration(person: Person, cred: Credential, now: datetime, ipt_otp_no: str,
                 dr_no: str, dr_name: str, dept_code: str, dept_name: str) -> dict[str, Any]:
    return {"data": {
        "psn_no": person.psn_no, "insutype": person.insutype, "begntime": _ts(now),
        "mdtrt_cert_type": cred.mdtrt_cert_type, "mdtrt_cert_no": cred.mdtrt_cert_no,
        "ipt_otp_no": ipt_otp_no, "atddr_no": dr_no, "dr_name": dr_name,
        "dept_code": dept_code, "dept_name": dept_name, "caty": dept_code,
    }}


def parse_registration(output: Any) -> str:
    try:
        return str(output["data"]["mdtrt_id"])
    except (KeyError, TypeError) as exc:
        raise MessageError(f"2201 answer lacks mdtrt_id: {exc}") from exc


def visit_info(mdtrt_id: str, person: Person, now: datetime, diag_code: str, diag_name: str,
               dr_no: str, dr_name: str, dept_name: str) -> dict[str, Any]:
    return {
        "mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "11",
                      "begntime": _ts(now), "main_cond_dscr": diag_name,
                      "dise_codg": diag_code, "dise_name": diag_name},
        "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": diag_code,
                      "diag_name": diag_name, "diag_dept": dept_name, "dise_dor_no": dr_no,
                      "dise_dor_name": dr_name, "diag_time": _ts(now), "vali_flag": "1"}],
    }


def fee_upload(mdtrt_id: str, person: Person, chrg_bchno: str, lines: list[FeeLine],
               now: datetime, dr_no: str, dr_name: str) -> dict[str, Any]:
    return {"feedetail": [{
        "feedetl_sn": ln.feedetl_sn, "mdtrt_id": mdtrt_id, "psn_no": person.psn_no,
        "chrg_bchno": chrg_bchno, "rxno": chrg_bchno, "fee_ocur_time": _ts(now),
        "med_list_codg": ln.code, "medins_list_codg": ln.code,
        "det_item_fee_sumamt": to_wire(ln.amount_fen), "cnt": Decimal(ln.qty),
        "pric": to_wire(ln.price_fen), "sin_dos_dscr": "", "used_frqu_dscr": "",
        "prd_days": Decimal(ln.days), "medc_way_dscr": "口服",
        "bilg_dr_codg": dr_no, "bilg_dr_name": dr_name,
    } for ln in lines]}


def presettle(person: Person, cred: Credential, mdtrt_id: str, chrg_bchno: str,
              medfee_fen: int) -> dict[str, Any]:
    return {"data": {
        "psn_no": person.psn_no, "mdtrt_cert_type": cred.mdtrt_cert_type,
        "mdtrt_cert_no": cred.mdtrt_cert_no, "med_type": "11",
        "medfee_sumamt": to_wire(medfee_fen), "psn_setlway": "01", "mdtrt_id": mdtrt_id,
        "chrg_bchno": chrg_bchno, "acct_used_flag": "1" if person.balc_fen > 0 else "0",
        "insutype": person.insutype,
    }}


def settle(presettle_input: dict[str, Any], pre: SetlInfo, invono: str) -> dict[str, Any]:
    data = dict(presettle_input["data"])
    s = pre.split
    data.update({"invono": invono, "fulamt_ownpay_amt": to_wire(s.fulamt_ownpay_amt),
                 "overlmt_selfpay": to_wire(s.overlmt_selfpay),
                 "preselfpay_amt": to_wire(s.preselfpay_amt),
                 "inscp_scp_amt": to_wire(s.inscp_scp_amt)})
    return {"data": data}


def parse_setlinfo(output: Any, *, expect_setl_id: bool) -> SetlInfo:
    try:
        node = output["setlinfo"]
        split = Split(**{f: to_fen(node.get(f) if node.get(f) is not None else 0)
                         for f in SPLIT_FIELDS})
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"setlinfo unreadable: {exc}") from exc
    errors = split.identity_errors()
    if errors:
        raise MessageError("setlinfo breaks identities: " + "; ".join(errors))
    setl_id = node.get("setl_id") or ""
    if expect_setl_id and not setl_id:
        raise MessageError("2207 answer has no setl_id")
    return SetlInfo(setl_id=str(setl_id), setl_time=str(node.get("setl_time") or ""),
                    mdtrt_id=str(node.get("mdtrt_id") or ""),
                    medins_setl_id=str(node.get("medins_setl_id") or ""), split=split)


def cancel_registration(mdtrt_id: str, psn_no: str, ipt_otp_no: str) -> dict[str, Any]:
    return {"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "ipt_otp_no": ipt_otp_no}}


def revoke(setl_id: str, mdtrt_id: str, psn_no: str) -> dict[str, Any]:
    return {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}}


def reverse(psn_no: str, omsgid: str, oinfno: str) -> dict[str, Any]:
    return {"data": {"psn_no": psn_no, "omsgid": omsgid, "oinfno": oinfno}}


def sign_out(opter: str, sign_no: str) -> dict[str, Any]:
    return {"signOut": {"opter_no": opter, "sign_no": sign_no}}


def reconcile_totals(insutype: str, setl_optins: str, day: date, medfee_fen: int, fund_fen: int,
                     acct_fen: int, count: int) -> dict[str, Any]:
    return {"data": {
        "insutype": insutype, "clr_type": "11", "setl_optins": setl_optins,
        "stmt_begndate": day.isoformat(), "stmt_enddate": day.isoformat(),
        "medfee_sumamt": to_wire(medfee_fen), "fund_pay_sumamt": to_wire(fund_fen),
        "acct_pay": to_wire(acct_fen), "fixmedins_setl_cnt": count, "refd_setl_flag": "0",
    }}


def parse_reconcile_totals(output: Any) -> tuple[str, str]:
    """-> (stmt_rslt, stmt_rslt_dscr); "0" means balanced."""
    try:
        node = output["stmtinfo"]
        return str(node["stmt_rslt"]), str(node.get("stmt_rslt_dscr") or "")
    except (KeyError, TypeError) as exc:
        raise MessageError(f"3201 answer lacks stmtinfo: {exc}") from exc


def file_upload(zip_bytes: bytes, filename: str, fixmedins_code: str) -> dict[str, Any]:
    import base64
    return {"fsUploadIn": {"in": base64.b64encode(zip_bytes).decode("ascii"),
                           "filename": filename, "fixmedins_code": fixmedins_code}}


def parse_file_upload(output: Any) -> str:
    try:
        node = output.get("file_qury_no") if isinstance(output, dict) else None
        if node is None and isinstance(output, dict) and "data" in output:
            node = output["data"].get("file_qury_no")
        if not node:
            raise KeyError("file_qury_no")
        return str(node)
    except (KeyError, TypeError, AttributeError) as exc:
        raise MessageError(f"9101 answer lacks file_qury_no: {exc}") from exc


def reconcile_details(setl_optins: str, file_qury_no: str, day: date, medfee_fen: int,
                      fund_fen: int, cash_fen: int, count: int) -> dict[str, Any]:
    return {"data": {
        "setl_optins": setl_optins, "file_qury_no": file_qury_no,
        "stmt_begndate": day.isoformat(), "stmt_enddate": day.isoformat(),
        "medfee_sumamt": to_wire(medfee_fen), "fund_pay_sumamt": to_wire(fund_fen),
        "cash_payamt": to_wire(cash_fen), "fixmedins_setl_cnt": count,
    }}


def parse_reconcile_details(output: Any) -> tuple[str, str]:
    """-> (file_qury_no, filename) of the result file to fetch with 9102."""
    try:
        node = output["fileinfo"]
        return str(node["file_qury_no"]), str(node["filename"])
    except (KeyError, TypeError) as exc:
        raise MessageError(f"3202 answer lacks fileinfo: {exc}") from exc


def file_download(file_qury_no: str, filename: str, fixmedins_code: str) -> dict[str, Any]:
    return {"fsDownloadIn": {"file_qury_no": file_qury_no, "filename": filename,
                             "fixmedins_code": fixmedins_code}}


DETAIL_UPLOAD_COLUMNS = ("setl_id", "mdtrt_id", "psn_no", "msgid", "medfee_sumamt",
                         "fund_pay_sumamt", "acct_pay", "refd_setl_flag")
DETAIL_RESULT_COLUMNS = ("psn_no", "mdtrt_id", "setl_id", "msgid", "stmt_rslt", "refd_setl_flag",
                         "memo", "medfee_sumamt", "fund_pay_sumamt", "acct_pay")
