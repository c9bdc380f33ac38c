"""The counter window driven like a worker would: keys and clicks, real services, real SQLite."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import select

from clinic.config import load_settings
from clinic.counter import Counter
from clinic.gui.main_window import TRAINING_TEXT
from clinic.models import AuditEvent, Visit
from settlement.money import yuan
from settlement.values import Person

pytestmark = pytest.mark.gui

WORKER_TIMEOUT_MS = 30_000
UNREACHABLE = "http://127.0.0.1:9"  # discard port: connection refused at once


@pytest.fixture
def make_window(tmp_path, accounts, open_window):
    def make(network_url: str = UNREACHABLE, reader_url: str = "", training: bool = False):
        settings = replace(load_settings(home=tmp_path / "home", training=training),
                           network_url=network_url)
        users = accounts(settings)
        session = users.admin()  # the counter acts as a signed-in user
        return open_window(Counter(settings, session), session, users.store, reader_url)

    return make


def press(qtbot, window, key):
    """A function key as the worker presses it: through the window's shortcuts."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window.focusWidget() or window, key)


def message(window) -> tuple[str, str]:
    return window.message.text(), window.message.property("kind")


def amount(label) -> str:
    return label.text().split()[0]


def test_a_card_visit_settles_from_the_keyboard_and_shows_split_and_receipt(qtbot, make_window,
                                                                           services):
    network_url, reader_path = services
    w = make_window(network_url, reader_path)
    w.confirm_settle = lambda split: True

    qtbot.mouseClick(w.read_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.name_value.text() != "—", timeout=WORKER_TIMEOUT_MS)
    assert message(w)[1] == "ok", message(w)
    assert "*" in w.certno_value.text() and w.insutype_value.text() != "—"
    assert w.focusWidget() is w.picker.search_box  # ready for the drugs at once

    qtbot.keyClicks(w.picker.search_box, "xbdp")
    assert w.picker.matches.count() >= 1
    assert w.picker.matches.item(0).text().startswith("硝苯地平控释片")
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_Return)
    assert w.rx_table.rowCount() == 1
    assert w.rx_table.item(0, 0).text().startswith("硝苯地平控释片")
    assert w.picker.search_box.text() == "" and w.focusWidget() is w.picker.search_box
    qtbot.waitUntil(lambda: w.verdict_list.count() > 0 and w.runner.idle, timeout=WORKER_TIMEOUT_MS)
    outcomes = {w.verdict_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(w.verdict_list.count())}
    assert outcomes == {"pass"}

    press(qtbot, w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: w.settle_button.isEnabled() or message(w)[1] == "error",
                    timeout=WORKER_TIMEOUT_MS)
    assert message(w)[1] == "ok", message(w)
    total = sum(it.amount_fen for it in w._items)
    assert amount(w.split_labels["medfee_sumamt"]) == yuan(total)

    press(qtbot, w, Qt.Key.Key_F9)
    qtbot.waitUntil(lambda: w.setl_id_value.text() != "—" or message(w)[1] == "error",
                    timeout=WORKER_TIMEOUT_MS)
    assert message(w)[1] == "ok", message(w)

    with w.counter.engine.connect() as conn:
        visit = conn.execute(select(Visit.__table__).where(Visit.setl_id == w.setl_id_value.text())).one()
    assert visit.state == "settled"
    split = json.loads(visit.split_json)
    for key, label in w.split_labels.items():
        assert amount(label) == yuan(split[key]), key
    assert split["medfee_sumamt"] == total
    assert split["fund_pay_sumamt"] + split["acct_pay"] + split["psn_cash_pay"] + split["hosp_part_amt"] == total
    receipt = Path(w.receipt_value.toolTip())
    assert receipt.is_file() and receipt.stat().st_size > 0
    assert visit.receipt_path == str(receipt)
    assert w.open_receipt_button.isEnabled()
    assert not w.settle_button.isEnabled() and not w.presettle_button.isEnabled()  # no second charge


def test_a_mistyped_id_number_shows_the_chinese_reason_in_the_window(qtbot, make_window):
    w = make_window()
    qtbot.keyClicks(w.id_edit, "310116195403120019")  # last digit wrong
    qtbot.keyClick(w.id_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: message(w)[1] == "error")
    text, _ = message(w)
    assert "身份证号" in text and "校验位" in text
    assert w.isVisible() and w.name_value.text() == "—"
    assert not w.runner.busy  # nothing was sent anywhere


def test_a_missing_card_reader_is_reported_in_chinese(qtbot, make_window, tmp_path):
    w = make_window(reader_url=str(tmp_path / "no-such-reader"))
    press(qtbot, w, Qt.Key.Key_F2)
    qtbot.waitUntil(lambda: message(w)[1] == "error" and not w.runner.busy,
                    timeout=WORKER_TIMEOUT_MS)
    assert "读卡器" in message(w)[0]
    assert w.read_button.isEnabled()  # the worker can plug it in and press F2 again


def test_an_unreachable_insurer_is_reported_in_chinese_not_as_a_crash(qtbot, make_window):
    w = make_window(UNREACHABLE)
    qtbot.keyClicks(w.id_edit, "11010519491231002X")
    qtbot.keyClick(w.id_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: message(w)[1] == "error" and not w.runner.busy,
                    timeout=WORKER_TIMEOUT_MS)
    text, _ = message(w)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text), text
    assert "Traceback" not in text and "系统内部错误" not in text
    assert w.read_button.isEnabled() and w.name_value.text() == "—"


def test_the_drug_search_lists_matches_while_typing_and_delete_removes_a_line(qtbot, make_window):
    w = make_window()
    qtbot.keyClicks(w.picker.search_box, "xbdp")
    assert w.picker.matches.count() >= 1
    assert all(w.picker.matches.item(i).text().startswith("硝苯地平")
               for i in range(w.picker.matches.count()))
    w.picker.search_box.clear()
    qtbot.keyClicks(w.picker.search_box, "x")  # one letter: many drugs, the list follows
    assert w.picker.matches.count() >= 2
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_Down)
    second = w.picker.matches.item(1).data(Qt.ItemDataRole.UserRole)
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_Tab)
    assert w.focusWidget() is w.picker.qty
    w.picker.qty.selectAll()
    qtbot.keyClicks(w.picker.qty, "2")
    qtbot.keyClick(w.picker.qty, Qt.Key.Key_Return)
    assert [(it.code, it.qty) for it in w._items] == [(second.code, 2)]
    assert w.rx_table.item(0, 3).text() == yuan(2 * second.price_fen)

    w.rx_table.selectRow(0)
    w.rx_table.setFocus()
    qtbot.keyClick(w.rx_table, Qt.Key.Key_Delete)
    assert w.rx_table.rowCount() == 0 and w._items == []


def test_training_mode_says_so_in_a_banner_and_the_title(qtbot, make_window):
    w = make_window(training=True)
    assert w.training_banner is not None and w.training_banner.isVisible()
    assert w.training_banner.text() == TRAINING_TEXT == "培训模式 — 不产生真实费用"
    assert TRAINING_TEXT in w.windowTitle()


def test_the_real_counter_shows_no_training_banner(qtbot, make_window):
    w = make_window()
    assert w.training_banner is None and TRAINING_TEXT not in w.windowTitle()


def _patient_and_drug(qtbot, w, query="xbdp", days=None):
    press(qtbot, w, Qt.Key.Key_F2)
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=WORKER_TIMEOUT_MS)
    assert message(w)[1] == "ok", message(w)
    qtbot.keyClicks(w.picker.search_box, query)
    if days is not None:
        w.picker.days.setValue(days)
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_Return)
    assert w.rx_table.rowCount() == 1


def test_a_blocked_prescription_is_not_presettled_and_the_window_says_why(qtbot, make_window,
                                                                         services):
    network_url, reader_path = services
    w = make_window(network_url, reader_path)
    _patient_and_drug(qtbot, w, days=70)
    qtbot.waitUntil(lambda: w.verdict_list.count() > 0, timeout=WORKER_TIMEOUT_MS)
    assert w.verdict_list.item(0).data(Qt.ItemDataRole.UserRole) == "block"  # shown before F5
    press(qtbot, w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=WORKER_TIMEOUT_MS)
    text, kind = message(w)
    assert kind == "error" and "70 天" in text
    assert not w.settle_button.isEnabled()
    with w.counter.engine.connect() as conn:
        assert conn.execute(select(Visit.id)).first() is None  # nothing registered with the insurer


def test_a_formulary_warning_needs_a_reason_and_the_override_is_kept(qtbot, make_window, services):
    network_url, reader_path = services
    w = make_window(network_url, reader_path)
    asked = []
    w.ask_override_reason = lambda v: asked.append(v.rule_id) or "已电话核实"
    _patient_and_drug(qtbot, w, "xbdp", days=7)
    qtbot.keyClicks(w.picker.search_box, "nqdp")  # 尼群地平片: same class C08CA, duplicate therapy
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.runner.idle and w.verdict_list.count() > 0, timeout=WORKER_TIMEOUT_MS)
    first = w.verdict_list.item(0)
    assert first.data(Qt.ItemDataRole.UserRole) == "warn" and "重复用药" in first.text()

    press(qtbot, w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: w.settle_button.isEnabled() or message(w)[1] == "error",
                    timeout=WORKER_TIMEOUT_MS)
    assert message(w)[1] == "ok", message(w)
    assert asked == ["R005"]
    with w.counter.engine.connect() as conn:
        visit = conn.execute(select(Visit.__table__)).one()
        overrides = conn.execute(select(AuditEvent.details)
                                 .where(AuditEvent.action == "formulary_override")).scalars().all()
    assert visit.state == "presettled"
    # the audit adds the visit's protected context; the override itself is rule and reason
    assert [{k: json.loads(d)[k] for k in ("rule_id", "reason")} for d in overrides] == \
        [{"rule_id": "R005", "reason": "已电话核实"}]


def test_a_warning_without_a_reason_stops_before_the_insurer(qtbot, make_window, services):
    network_url, reader_path = services
    w = make_window(network_url, reader_path)
    w.ask_override_reason = lambda v: None  # the worker pressed 取消
    _patient_and_drug(qtbot, w, "xbdp", days=7)
    qtbot.keyClicks(w.picker.search_box, "nqdp")
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_Return)
    press(qtbot, w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: w.runner.idle and message(w)[1] != "info", timeout=WORKER_TIMEOUT_MS)
    assert message(w)[1] == "error" and "重复用药" in message(w)[0]
    assert not w.settle_button.isEnabled()
    with w.counter.engine.connect() as conn:
        assert conn.execute(select(Visit.id)).first() is None


def test_the_diagnosis_is_found_by_pinyin_initials(qtbot, make_window):
    w = make_window()
    assert w.diagnosis.code() == "I10"
    edit = w.diagnosis.lineEdit()
    edit.selectAll()
    qtbot.keyClicks(edit, "tnb")  # 糖尿病
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.diagnosis.code() is not None)
    assert w.diagnosis.code().startswith("E1") and "糖尿病" in w.diagnosis.currentText()


def test_presettle_asks_for_a_diagnosis_the_list_does_not_know(qtbot, make_window):
    w = make_window()
    w._person = Person("P1", "测试", "11010519491231002X", "2", date(1949, 12, 31), 76, "310", "11",
                       "1", 0, "310116")  # the check happens before anything is sent
    qtbot.keyClicks(w.picker.search_box, "xbdp")
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_Return)
    w.diagnosis.setEditText("zzzz")
    w.presettle()
    text, kind = message(w)
    assert kind == "error" and "诊断" in text and not w.runner.busy


def test_the_next_patient_starts_clean_and_a_repeat_refill_is_flagged(qtbot, make_window, services):
    network_url, reader_path = services
    w = make_window(network_url, reader_path)
    w.confirm_settle = lambda split: True
    _patient_and_drug(qtbot, w, "xbdp", days=7)
    press(qtbot, w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: w.settle_button.isEnabled(), timeout=WORKER_TIMEOUT_MS)
    press(qtbot, w, Qt.Key.Key_F9)
    qtbot.waitUntil(lambda: w.setl_id_value.text() != "—", timeout=WORKER_TIMEOUT_MS)

    press(qtbot, w, Qt.Key.Key_F12)
    assert w.rx_table.rowCount() == 0 and w.name_value.text() == "—"
    assert all(label.text() == "—" for label in w.split_labels.values())
    assert w.setl_id_value.text() == "—" and not w.open_receipt_button.isEnabled()

    _patient_and_drug(qtbot, w, "xbdp", days=7)  # same card, same drug, same day
    qtbot.waitUntil(lambda: w.runner.idle and w.verdict_list.count() > 0, timeout=WORKER_TIMEOUT_MS)
    first = w.verdict_list.item(0)
    assert first.data(Qt.ItemDataRole.UserRole) == "warn", first.text()
    assert "R006" in first.toolTip()


def test_an_unreadable_settle_answer_shows_unknown_and_offers_no_second_charge(qtbot, make_window,
                                                                        tmp_path):
    from clinic.services import start_reader, start_simulator
    # A truncated 2207 answer: money may have moved, so the window must not offer F9 again.
    sim = start_simulator(tmp_path / "insurer.db", extra=["--fault", "2207:malformed:99"])
    reader = start_reader()
    try:
        w = make_window(sim.address, reader.address)
        w.confirm_settle = lambda split: True
        _patient_and_drug(qtbot, w, "xbdp", days=7)
        press(qtbot, w, Qt.Key.Key_F5)
        qtbot.waitUntil(lambda: w.settle_button.isEnabled(), timeout=WORKER_TIMEOUT_MS)
        press(qtbot, w, Qt.Key.Key_F9)
        qtbot.waitUntil(lambda: not w.runner.busy, timeout=60_000)
        text, kind = message(w)
        assert kind == "error" and "未知" in text, text
        assert not w.settle_button.isEnabled() and not w.presettle_button.isEnabled()
        assert w.setl_id_value.text() == "—"
        with w.counter.engine.connect() as conn:
            assert conn.execute(select(Visit.state)).scalar_one() == "unknown"
    finally:
        reader.stop()
        sim.stop()


def test_the_window_finishes_a_settlement_a_crash_left_unknown_before_the_first_patient(
        qtbot, make_window, services, tmp_path, accounts):
    import os
    import subprocess
    import sys
    network_url, reader_path = services
    home = tmp_path / "home"
    users = accounts(load_settings(home=home))
    users.admin()  # the crashed `clinic settle` logs in as this administrator
    env = {**os.environ, "CLINIC_HOME": str(home), "CLINIC_CRASH_AT": "2207:after_answer",
           "CLINIC_USER": users.LOGIN, "CLINIC_PASSWORD": users.PASSWORD}
    crashed = subprocess.run([sys.executable, "-m", "clinic", "settle", "--reader", reader_path,
                              "--rx", "xbdp:1:7", "--network", network_url], env=env,
                             capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -9, crashed.stderr
    w = make_window(network_url, reader_path)
    w.recover_on_start()
    qtbot.waitUntil(lambda: "已成功" in w.message.text(), timeout=WORKER_TIMEOUT_MS)
    with w.counter.engine.connect() as conn:
        states = [r[0] for r in conn.execute(select(Visit.state))]
    assert states == ["settled"]


def test_changing_a_presettled_prescription_withdraws_the_visit(qtbot, make_window, services):
    network_url, reader_path = services
    w = make_window(network_url, reader_path)
    qtbot.mouseClick(w.read_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.name_value.text() != "—", timeout=WORKER_TIMEOUT_MS)
    qtbot.keyClicks(w.picker.search_box, "xbdp")
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_Return)
    press(qtbot, w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: w._pre is not None, timeout=WORKER_TIMEOUT_MS)
    visit_id = w._visit_id
    w.next_patient()
    qtbot.waitUntil(lambda: w.counter.visit_row(visit_id).state == "cancelled",
                    timeout=WORKER_TIMEOUT_MS)


def test_a_voucher_qr_typed_by_a_keyboard_wedge_scanner_finds_the_patient(qtbot, make_window,
                                                                          services):
    from settlement.mock_network.registry import default_villager
    from settlement.mock_network.voucher_hub import qr_payload
    network_url, reader_path = services
    w = make_window(network_url, reader_path)
    villager = default_villager()
    qtbot.keyClicks(w.id_edit, qr_payload(villager))  # the scanner types, then presses Enter
    qtbot.keyClick(w.id_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.name_value.text() != "—" or message(w)[1] == "error",
                    timeout=WORKER_TIMEOUT_MS)
    assert w.name_value.text() == villager.psn_name, message(w)
    assert w._cred.mdtrt_cert_type == "01" and len(w._cred.mdtrt_cert_no) == 40


def test_a_garbled_scan_is_reported_without_calling_the_insurer(qtbot, make_window):
    w = make_window()
    qtbot.keyClicks(w.id_edit, "YBEC1-NOT-A-REAL-CODE")
    qtbot.keyClick(w.id_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: message(w)[1] == "error" and not w.runner.busy,
                    timeout=WORKER_TIMEOUT_MS)
    assert w.name_value.text() == "—"
