"""1301 catalogue download (a file reference, fetched with 9102) and 1312 paged catalogue query.

The catalogue is settlement/mock_network/national_catalogue.py's generated national list of
about 100,000 drugs; it is built on the first of these calls, not at start-up.
"""
from __future__ import annotations

import re
from datetime import timedelta

from .. import national_catalogue as nc
from ..db import StoredFile
from .common import Ctx, TxError, handler, node, text

MAX_PAGE_SIZE = 1000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@handler("1301")
def download_catalogue(ctx: Ctx, inp: dict) -> dict:
    """`data{ver}`: the version the clinic holds. Always answers with the current full file."""
    d = node(inp, "data")
    text(d, "ver", required=False)
    f = StoredFile(file_qury_no=ctx.new_id("file"), fixmedins_code=ctx.fixmedins_code,
                   filename=f"catalogue_{nc.VERSION}.zip", content=nc.zip_file(), created=ctx.now)
    ctx.s.add(f)
    return {"file_qury_no": f.file_qury_no, "filename": f.filename, "ver": nc.VERSION,
            "recordCounts": len(nc.entries()),
            "dld_endtime": (ctx.now + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")}


def _positive(d: dict, key: str, default: int) -> int:
    raw = text(d, key, required=False, default=str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise TxError(f"字段 {key} 应为正整数")
    return int(raw)


@handler("1312")
def query_catalogue(ctx: Ctx, inp: dict) -> dict:
    d = node(inp, "data")
    query_date = text(d, "query_date", required=False)
    if query_date:
        if not _DATE.match(query_date):
            raise TxError("查询时间点 query_date 格式错误，应为 yyyy-MM-dd")
        query_date = query_date[:10]
    page_num = _positive(d, "page_num", 1)
    page_size = _positive(d, "page_size", 100)
    if page_size > MAX_PAGE_SIZE:
        raise TxError(f"每页条数 page_size 不能超过 {MAX_PAGE_SIZE}")
    hits = nc.query(query_date=query_date,
                    hilist_code=text(d, "hilist_code", required=False).upper(),
                    med_chrgitm_type=text(d, "med_chrgitm_type", required=False),
                    chrgitm_lv=text(d, "chrgitm_lv", required=False))
    pages = (len(hits) + page_size - 1) // page_size
    page = hits[(page_num - 1) * page_size: page_num * page_size]
    return {"data": [e.as_output() for e in page], "recordCounts": len(hits), "pages": pages,
            "pageNum": page_num, "pageSize": page_size, "size": len(page),
            "firstPage": page_num == 1, "lastPage": page_num >= pages,
            "ver": nc.VERSION}
