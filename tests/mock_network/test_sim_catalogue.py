"""1301 (catalogue download via 9102) and 1312 (paged catalogue query) through the real simulator."""
from __future__ import annotations

import io
import zipfile

import pytest

from clinic.services import start_simulator
from settlement.mock_network import national_catalogue as nc

from .conftest import Client

NIFEDIPINE = "XC08CAX066A011010100002"  # 硝苯地平控释片, on the formulary


@pytest.fixture(scope="module")
def catalogue_sim(tmp_path_factory):
    sim = start_simulator(tmp_path_factory.mktemp("catalogue") / "insurer.db")
    yield sim
    sim.stop()


@pytest.fixture
def client(catalogue_sim):
    c = Client(catalogue_sim.address)
    c.sign_in()
    yield c
    c.close()


def test_sim_1301_gives_a_file_reference_and_9102_the_zip_of_100000_items(client: Client):
    out = client.ok("1301", {"data": {"ver": "0"}})
    assert out["ver"] == nc.VERSION and out["recordCounts"] >= 100_000
    r = client.post(client.body("9102", {"fsDownloadIn": {
        "file_qury_no": out["file_qury_no"], "filename": out["filename"],
        "fixmedins_code": client.inst.fixmedins_code}}))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/zip")
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        (member,) = z.namelist()
        lines = z.read(member).decode("utf-8").splitlines()
    assert len(lines) == out["recordCounts"] >= 100_000
    rows = {ln.split("\t")[0]: ln.split("\t") for ln in lines}
    assert len(rows) == len(lines)  # codes are unique
    assert rows[NIFEDIPINE][:4] == [NIFEDIPINE, "硝苯地平控释片", "09", "01"]
    assert all(len(cells) == len(nc.COLUMNS) for cells in rows.values())
    assert all(len(code) == 23 and code[0] in "XZ" for code in rows)


def test_sim_1312_pages_through_a_code_prefix_with_paging_fields(client: Client):
    first = client.ok("1312", {"data": {"hilist_code": "XC08CA", "page_num": 1, "page_size": 50}})
    total = first["recordCounts"]
    assert total > 50 and first["pages"] == (total + 49) // 50
    assert first["pageNum"] == 1 and first["pageSize"] == 50 and first["firstPage"] and not first["lastPage"]
    last = client.ok("1312", {"data": {"hilist_code": "XC08CA", "page_num": first["pages"], "page_size": 50}})
    assert last["lastPage"] and last["size"] == total - 50 * (first["pages"] - 1)
    item = first["data"][0]
    assert set(item) >= {"hilist_code", "hilist_name", "begndate", "enddate", "chrgitm_lv",
                         "lmt_used_flag", "vali_flag"}
    assert all(d["hilist_code"].startswith("XC08CA") for d in first["data"] + last["data"])


def test_sim_1312_query_date_leaves_out_items_not_in_effect(client: Client):
    ended = next(e for e in nc.entries() if e.enddate < "2026-11-30")
    on_day = client.ok("1312", {"data": {"hilist_code": ended.hilist_code, "query_date": "2026-11-30"}})
    any_day = client.ok("1312", {"data": {"hilist_code": ended.hilist_code}})
    assert on_day["recordCounts"] == 0 and any_day["data"][0]["enddate"] == ended.enddate


def test_sim_1312_filters_by_class_and_item_type(client: Client):
    out = client.ok("1312", {"data": {"hilist_code": "Z", "chrgitm_lv": "03", "med_chrgitm_type": "11",
                                      "page_size": 100}})
    assert out["recordCounts"] > 0
    assert all(d["chrgitm_lv"] == "03" and d["hilist_code"].startswith("Z") for d in out["data"])


@pytest.mark.parametrize("data, message", [
    ({"page_size": 5000}, "page_size 不能超过"),
    ({"page_num": 0}, "page_num 应为正整数"),
    ({"query_date": "30/11/2026"}, "query_date 格式错误"),
])
def test_sim_1312_refuses_bad_paging_and_dates(client: Client, data, message):
    out = client.call("1312", {"data": data})
    assert out["infcode"] == -1 and message in out["err_msg"]
