"""9101 file upload, 9102 file download, 3202 detail reconciliation (对明细账).

The detail file a clinic uploads is a zip with one tab-separated text member, one settlement
a line: setl_id, mdtrt_id, psn_no, msgid, medfee_sumamt, fund_pay_sumamt, acct_pay,
refd_setl_flag (amounts in yuan, "1" = revoked). The result (fetched with 9102) is a zip
whose result.txt holds: psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo,
medfee_sumamt, fund_pay_sumamt, acct_pay.
"""
from __future__ import annotations

import base64
import binascii
import io
import zipfile
from datetime import timedelta

from sqlalchemy import select

from settlement.money import AmountError, to_fen, yuan

from ..db import Settlement, StoredFile
from .common import Ctx, RawFile, TxError, handler, node, text
from .reconcile import _day

MAX_FILE = 4 * 1024 * 1024
MAX_MEMBER = 16 * 1024 * 1024  # a zip bomb stops here
UPLOAD_COLUMNS = ("setl_id", "mdtrt_id", "psn_no", "msgid", "medfee_sumamt", "fund_pay_sumamt",
                  "acct_pay", "refd_setl_flag")


def _file(ctx: Ctx, qury: str) -> StoredFile:
    f = ctx.s.get(StoredFile, qury)
    if f is None or f.fixmedins_code != ctx.fixmedins_code:
        raise TxError(f"文件查询号 {qury} 不存在")
    return f


@handler("9101")
def upload(ctx: Ctx, inp: dict) -> dict:
    d = node(inp, "fsUploadIn")
    if text(d, "fixmedins_code") != ctx.fixmedins_code:
        raise TxError("上传文件的机构编号与报文不符")
    filename = text(d, "filename")
    try:
        data = base64.b64decode(text(d, "in"), validate=True)
    except (binascii.Error, ValueError):
        raise TxError("文件内容 in 不是合法的 base64") from None
    if not data or len(data) > MAX_FILE:
        raise TxError(f"文件为空或超过 {MAX_FILE // 1024 // 1024} MB")
    f = StoredFile(file_qury_no=ctx.new_id("file"), fixmedins_code=ctx.fixmedins_code,
                   filename=filename, content=data, created=ctx.now)
    ctx.s.add(f)
    return {"file_qury_no": f.file_qury_no, "filename": filename,
            "dld_endtime": (ctx.now + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")}


@handler("9102")
def download(ctx: Ctx, inp: dict) -> RawFile:
    d = node(inp, "fsDownloadIn")
    f = _file(ctx, text(d, "file_qury_no"))
    name = text(d, "filename", required=False)
    if name and name != f.filename:
        raise TxError("文件名与文件查询号不符")
    return RawFile(f.content)


def _read_detail(content: bytes) -> list[dict[str, str]]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            members = [i for i in z.infolist() if not i.is_dir()]
            if len(members) != 1 or members[0].file_size > MAX_MEMBER:
                raise TxError("明细文件应为只含一个文本文件的 zip")
            raw = z.read(members[0]).decode("utf-8-sig")
    except (zipfile.BadZipFile, UnicodeDecodeError, RuntimeError, ValueError):
        raise TxError("明细文件不是可读的 zip（UTF-8 文本）") from None
    rows = []
    for n, line in enumerate(filter(None, raw.splitlines()), 1):
        cells = line.split("\t")
        if len(cells) != len(UPLOAD_COLUMNS):
            raise TxError(f"明细文件第 {n} 行应有 {len(UPLOAD_COLUMNS)} 列，实有 {len(cells)} 列")
        rows.append(dict(zip(UPLOAD_COLUMNS, (c.strip() for c in cells))))
    return rows


def _fen(row: dict[str, str], key: str, n: int) -> int:
    try:
        return to_fen(row[key])
    except (AmountError, ArithmeticError):
        raise TxError(f"明细文件第 {n} 行金额 {key} 格式错误") from None


@handler("3202")
def reconcile_details(ctx: Ctx, inp: dict) -> dict:
    d = node(inp, "data")
    text(d, "setl_optins")
    begin, end = _day(d, "stmt_begndate"), _day(d, "stmt_enddate")
    rows = _read_detail(_file(ctx, text(d, "file_qury_no")).content)
    ours = {s.setl_id: s for s in ctx.s.scalars(select(Settlement).where(
        Settlement.fixmedins_code == ctx.fixmedins_code, Settlement.kind == "settle",
        Settlement.setl_time >= begin, Settlement.setl_time < end + timedelta(days=1)))}
    out: list[list[str]] = []
    seen: set[str] = set()
    for n, r in enumerate(rows, 1):
        amounts = (_fen(r, "medfee_sumamt", n), _fen(r, "fund_pay_sumamt", n), _fen(r, "acct_pay", n))
        s = ours.get(r["setl_id"]) or ctx.s.get(Settlement, r["setl_id"])
        if s is not None and (s.fixmedins_code != ctx.fixmedins_code or s.kind != "settle"):
            s = None
        memo = []
        if s is None:
            memo.append("中心无此结算")
        else:
            seen.add(s.setl_id)
            if s.status == "reversed":
                memo.append("该结算已被冲正")
            elif (r["refd_setl_flag"] == "1") != (s.status == "revoked"):
                memo.append("中心该结算已撤销" if s.status == "revoked" else "中心该结算未撤销")
            for label, mine, theirs in zip(("医疗费总额", "基金支付", "个人账户支付"), amounts,
                                           (s.medfee_sumamt, s.fund_pay_sumamt, s.acct_pay)):
                if mine != theirs:
                    memo.append(f"{label}机构 {yuan(mine)} 元、中心 {yuan(theirs)} 元")
            if s.medins_setl_id != r["msgid"]:
                memo.append("报文ID不符")
        shown = (s.medfee_sumamt, s.fund_pay_sumamt, s.acct_pay) if s else amounts
        out.append([r["psn_no"], r["mdtrt_id"], r["setl_id"], r["msgid"], "1" if memo else "0",
                    r["refd_setl_flag"], "；".join(memo), *(yuan(a) for a in shown)])
    for s in ours.values():
        if s.setl_id not in seen and s.status != "reversed":
            out.append([s.psn_no, s.mdtrt_id, s.setl_id, s.medins_setl_id, "1",
                        "1" if s.status == "revoked" else "0", "机构无此结算",
                        yuan(s.medfee_sumamt), yuan(s.fund_pay_sumamt), yuan(s.acct_pay)])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("result.txt", date_time=ctx.now.timetuple()[:6])
        z.writestr(info, "".join("\t".join(row) + "\n" for row in out).encode("utf-8"))
    f = StoredFile(file_qury_no=ctx.new_id("file"), fixmedins_code=ctx.fixmedins_code,
                   filename=f"{ctx.fixmedins_code}_{begin:%Y%m%d}_result.zip", content=buf.getvalue(),
                   created=ctx.now)
    ctx.s.add(f)
    return {"fileinfo": {"file_qury_no": f.file_qury_no, "filename": f.filename,
                         "dld_endtime": (ctx.now + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")}}
