import shutil
import subprocess
from datetime import date

import pytest

from clinic.domain import Person, RxItem, Settlement, Split
from clinic.receipt import ReceiptHeader, receipt_lines, write_pdf

SPLIT = Split(medfee_sumamt=4520, fulamt_ownpay_amt=0, overlmt_selfpay=0, preselfpay_amt=23,
              inscp_scp_amt=4497, act_pay_dedc=4497, hifp_pay=0, fund_pay_sumamt=0,
              psn_part_amt=4520, acct_pay=4520, psn_cash_pay=0, hosp_part_amt=0, balc=137363)
PERSON = Person("31000000000000000001", "王秀英", "310116194303120026", "2", date(1943, 3, 12), 83,
                "310", "11", "1", 137815, "310116")
ITEMS = (RxItem("XC08CAX066A011010100002", "硝苯地平控释片", 1, 7, 3250, "盒"),
         RxItem("XB01ACA056A012030101554", "阿司匹林肠溶片", 1, 30, 1270, "盒"))
SETTLED = Settlement("v1", "H31011600001202611301000000007", "S202611300001", "M1",
                     "2026-11-30 10:00:00", SPLIT)


def _text(pdf):
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed")
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout


def test_receipt_pdf_text_reads_correctly_in_chinese(tmp_path):
    header = ReceiptHeader("枫泾镇新春村卫生室", "H31011600001", "D0001", "张医生")
    pdf = write_pdf(tmp_path / "r.pdf", receipt_lines(header, PERSON, ITEMS, SETTLED))
    text = _text(pdf)
    for expected in ("枫泾镇新春村卫生室", "医保门诊结算单", "王*英", "310116********0026",
                     "硝苯地平控释片", "阿司匹林肠溶片", "医疗费总额", "45.20", "个人账户支付",
                     "1373.63", "S202611300001", "张医生"):
        assert expected in text, expected
    assert "310116194303120026" not in text
    assert "王秀英" not in text  # the file on disk must not name the patient


def test_receipt_is_80mm_wide_and_embeds_its_font(tmp_path):
    header = ReceiptHeader("枫泾镇新春村卫生室", "H31011600001", "D0001", "张医生")
    pdf = write_pdf(tmp_path / "r.pdf", receipt_lines(header, PERSON, ITEMS, SETTLED))
    if not shutil.which("pdffonts"):
        pytest.skip("poppler-utils not installed")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    width_pt = float(info.split("Page size:")[1].split("x")[0])
    assert abs(width_pt - 80 / 25.4 * 72) < 0.5
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True).stdout
    # columns end with: emb sub uni object-id generation
    embedded = [ln for ln in fonts.splitlines()[2:] if "TrueType" in ln and ln.split()[-5] == "yes"]
    assert embedded, fonts


def test_training_receipt_says_training_unmistakably(tmp_path):
    header = ReceiptHeader("枫泾镇新春村卫生室（培训）", "T31011600001", "D0001", "张医生", training=True)
    pdf = write_pdf(tmp_path / "r.pdf", receipt_lines(header, PERSON, ITEMS, SETTLED), training=True)
    text = _text(pdf)
    assert text.count("培训") >= 3 and "不产生任何真实费用" in text
