"""Who may use the desk: first start, login, idle lock, and what each role's window offers.

Real dialogs and windows (offscreen), the real UserStore (Argon2id) on the test home's real SQLite
file; time is a fake clock where the behaviour depends on it.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLabel, QLineEdit, QTableWidget
from sqlalchemy import select

from clinic.config import load_settings
from clinic.counter import Counter
from clinic.gui.app import start_desk
from clinic.gui.login import ChangePasswordDialog, FirstStartDialog, LoginDialog
from clinic.gui.main_window import MainWindow
from clinic.models import Visit
from settlement.values import Credential, Person

pytestmark = pytest.mark.gui

WORKER_TIMEOUT_MS = 30_000
UNREACHABLE = "http://127.0.0.1:9"
PATIENT = Person("P0001", "陆秀英", "310228194303120246", "2", date(1943, 3, 12), 83, "390", "11",
                 "1", 0, "310116")
OTHER_PASSWORD = "other-horse-2"


@pytest.fixture
def home_settings(tmp_path):
    return replace(load_settings(home=tmp_path / "home"), network_url=UNREACHABLE,
                   idle_lock_minutes=5.0)


class FakeClock:
    """Monotonic seconds for the idle watch, a datetime for the UserStore's lockout."""

    def __init__(self):
        self.seconds = 1000.0
        self.start = datetime(2026, 11, 30, 9, 0, 0)

    def __call__(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@pytest.fixture
def desk(home_settings, accounts, open_window):
    """make(role) -> a window signed in as a user of that role, idle clock faked."""
    def make(role: str = "admin", *, settings=None, clock: FakeClock | None = None,
             reader_url: str = ""):
        settings = settings or home_settings
        clock = clock or FakeClock()
        users = accounts(settings, clock=clock.now)
        if role == "admin":
            session = users.admin()
        else:
            users.add(f"u{role}", role)
            session = users.store.login(f"u{role}", users.PASSWORD)
        window = open_window(Counter(settings, session), session, users.store, reader_url,
                             idle_clock=clock)
        window.clock = clock
        return window

    return make


def error_of(dialog) -> str:
    return dialog.error.text()


def type_into(qtbot, edit: QLineEdit, text: str) -> None:
    if text.isascii():
        qtbot.keyClicks(edit, text)
    else:
        edit.insert(text)  # Chinese arrives from the input method as one committed string


def driven(qtbot, steps: dict[type, list[tuple[str, str]]], seen: list):
    """A `run_dialog` for start_desk that types into each dialog like a user and presses Enter."""

    def run(dialog: QDialog) -> bool:
        seen.append(type(dialog))
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        for name, text in steps[type(dialog)]:
            edit = dialog.findChild(QLineEdit, name)
            edit.setFocus()
            type_into(qtbot, edit, text)
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: not dialog.isVisible() or bool(error_of(dialog)), timeout=10_000)
        return dialog.result() == QDialog.DialogCode.Accepted

    return run


# ---- start-up ----------------------------------------------------------------------------------

def test_first_start_dialog_creates_the_admin_and_opens_the_counter(qtbot, home_settings, accounts):
    seen: list = []
    run = driven(qtbot, {FirstStartDialog: [("login", "wang"), ("fullName", "王管理"),
                                            ("password", "correct-horse-1"),
                                            ("passwordAgain", "correct-horse-1")]}, seen)
    desk = start_desk(home_settings, "", run_dialog=run)
    try:
        assert seen == [FirstStartDialog]  # a new PC: no login asked, the admin is created
        assert desk is not None and isinstance(desk.window, MainWindow)
        assert desk.counter.operator.opter == "wang"
        assert desk.counter.operator.role == "admin"
        assert "王管理（管理员）" in desk.window.user_label.text()
        users = accounts(home_settings)
        assert users.store.has_users()
        assert users.store.login("wang", "correct-horse-1").operator.role == "admin"
    finally:
        desk.window.runner.shutdown()
        desk.close()


def test_first_start_refuses_a_short_or_mistyped_password_in_chinese(qtbot, home_settings,
                                                                     accounts):
    store = accounts(home_settings).store
    dlg = FirstStartDialog(store)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.keyClicks(dlg.login_edit, "wang")
    type_into(qtbot, dlg.name_edit, "王管理")
    qtbot.keyClicks(dlg.password_edit, "short")
    qtbot.keyClicks(dlg.again_edit, "short")
    qtbot.keyClick(dlg.again_edit, Qt.Key.Key_Return)
    assert error_of(dlg) == "密码至少 8 位" and dlg.isVisible()
    dlg.password_edit.setText("correct-horse-1")
    dlg.again_edit.setText("correct-horse-2")
    qtbot.keyClick(dlg.again_edit, Qt.Key.Key_Return)
    assert error_of(dlg) == "两次输入的密码不一致" and dlg.isVisible()
    assert not store.has_users()


def test_login_with_a_wrong_password_shows_the_chinese_error_and_attempts_left(qtbot, home_settings,
                                                                              accounts):
    users = accounts(home_settings)
    users.admin()
    dlg = LoginDialog(users.store)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.keyClicks(dlg.login_edit, users.LOGIN)
    qtbot.keyClicks(dlg.password_edit, "wrong-password")
    qtbot.keyClick(dlg.password_edit, Qt.Key.Key_Return)  # Enter submits
    qtbot.waitUntil(lambda: error_of(dlg) != "", timeout=10_000)
    assert "密码不对" in error_of(dlg) and "还可再试 4 次" in error_of(dlg)
    assert dlg.isVisible() and dlg.session is None
    assert dlg.password_edit.text() == "" and dlg.focusWidget() is dlg.password_edit  # type it again


def test_five_wrong_passwords_lock_the_account_and_say_how_many_minutes(qtbot, home_settings,
                                                                        accounts):
    clock = FakeClock()
    users = accounts(home_settings, clock=clock.now)
    users.admin()
    dlg = LoginDialog(users.store, clock=clock.now)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.keyClicks(dlg.login_edit, users.LOGIN)

    def attempt(password: str) -> str:
        dlg.show_error("")
        qtbot.keyClicks(dlg.password_edit, password)
        qtbot.keyClick(dlg.password_edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: bool(error_of(dlg)) or not dlg.isVisible(), timeout=10_000)
        return error_of(dlg)

    for left in (4, 3, 2, 1):
        assert f"还可再试 {left} 次" in attempt("wrong-password")
    locked = attempt("wrong-password")
    assert "锁定" in locked and "1 分钟后再试" in locked, locked
    assert "锁定" in attempt(users.PASSWORD)  # even the right password waits
    clock.advance(31)  # the first lock is 30 seconds
    dlg.show_error("")
    qtbot.keyClicks(dlg.password_edit, users.PASSWORD)
    qtbot.keyClick(dlg.password_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=10_000)
    assert dlg.session is not None and dlg.session.operator.opter == users.LOGIN


def test_a_disabled_account_and_a_trainee_on_the_real_desk_are_refused_in_chinese(
        qtbot, home_settings, accounts):
    users = accounts(home_settings)
    users.add("gone", "worker")
    users.store.disable_user(users.admin(), "gone")
    training = accounts(replace(home_settings, training=True))  # trainees exist only there
    training.add("xue", "trainee")

    for login, expected in (("gone", "该账号已停用"), ("xue", "学员账号只能在培训模式下登录")):
        dlg = LoginDialog(users.store)
        qtbot.addWidget(dlg)
        dlg.show()
        qtbot.keyClicks(dlg.login_edit, login)
        qtbot.keyClicks(dlg.password_edit, users.PASSWORD)
        qtbot.keyClick(dlg.password_edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: error_of(dlg) != "", timeout=10_000)
        assert expected in error_of(dlg) and dlg.session is None


def test_cancel_at_login_exits_cleanly_without_a_counter(qtbot, home_settings, accounts):
    accounts(home_settings).admin()
    seen: list = []

    def cancel(dialog: QDialog) -> bool:
        seen.append(type(dialog))
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        return dialog.result() == QDialog.DialogCode.Accepted

    assert start_desk(home_settings, "", run_dialog=cancel) is None
    assert seen == [LoginDialog]


def test_a_reset_password_must_be_changed_before_the_counter_opens(qtbot, home_settings,
                                                                   accounts):
    users = accounts(home_settings)
    users.add("li", "worker")
    users.store.reset_password(users.admin(), "li", "temporary-1")
    seen: list = []
    run = driven(qtbot, {LoginDialog: [("login", "li"), ("password", "temporary-1")],
                         ChangePasswordDialog: [("newPassword", OTHER_PASSWORD),
                                                ("newPasswordAgain", OTHER_PASSWORD)]}, seen)
    desk = start_desk(home_settings, "", run_dialog=run)
    try:
        assert seen == [LoginDialog, ChangePasswordDialog]
        assert desk is not None and desk.counter.operator.opter == "li"
        assert "（村医）" in desk.window.user_label.text()
        again = users.store.login("li", OTHER_PASSWORD)
        assert not again.must_change_password
    finally:
        desk.window.runner.shutdown()
        desk.close()


# ---- the idle lock -----------------------------------------------------------------------------

def show_patient(w: MainWindow) -> None:
    w._on_person((Credential("02", PATIENT.certno), PATIENT))
    assert w.name_value.text() == PATIENT.psn_name


def visible_texts(w: MainWindow) -> list[str]:
    """Everything a person could read in the window right now."""
    out = [w.windowTitle()]
    for label in w.findChildren(QLabel):
        if label.isVisible():
            out.append(label.text())
    for edit in w.findChildren(QLineEdit):
        if edit.isVisible():
            out.append(edit.text())
    for table in w.findChildren(QTableWidget):
        if table.isVisible():
            out += [table.item(r, c).text() for r in range(table.rowCount())
                    for c in range(table.columnCount()) if table.item(r, c)]
    return out


def test_idle_lock_engages_after_the_configured_minutes_and_hides_the_patient(qtbot, desk):
    w = desk()
    assert w.idle.timer.isActive() and w.idle.timer.interval() == 5000  # production's tick
    show_patient(w)
    assert any(PATIENT.psn_name in t for t in visible_texts(w))

    w.clock.advance(4 * 60)
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_X)  # activity anywhere in the app resets it
    w.clock.advance(4 * 60)
    assert not w.idle.check() and not w.locked
    w.clock.advance(60)
    assert w.idle.check() and w.locked  # five minutes since the last key press

    assert w.pages.currentWidget() is w.lock_screen and not w.counter_page.isVisible()
    texts = visible_texts(w)
    assert not any(PATIENT.psn_name in t or "0246" in t or "硝苯" in t for t in texts), texts
    assert w.focusWidget() is w.lock_screen.password
    qtbot.keyClick(w.lock_screen.password, Qt.Key.Key_F2)  # no shortcut works behind the lock
    assert not w.runner.busy and w.name_value.text() == PATIENT.psn_name


def test_the_idle_lock_is_off_while_someone_keeps_working(qtbot, desk):
    w = desk()
    for _ in range(6):
        w.clock.advance(4 * 60)
        qtbot.mouseClick(w.read_button, Qt.MouseButton.RightButton)  # a click counts too
        assert not w.idle.check()
    assert not w.locked


def test_unlock_refuses_a_wrong_password_and_the_right_one_restores_the_visit(qtbot, desk):
    w = desk()
    show_patient(w)
    w.clock.advance(5 * 60)
    assert w.idle.check()
    screen = w.lock_screen

    qtbot.keyClicks(screen.password, "wrong-password")
    qtbot.keyClick(screen.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: screen.error.text() != "", timeout=10_000)
    assert "密码错误" in screen.error.text()
    assert w.locked and not w.counter_page.isVisible() and screen.password.text() == ""

    qtbot.keyClicks(screen.password, "correct-horse-1")
    qtbot.keyClick(screen.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.locked, timeout=10_000)
    assert w.pages.currentWidget() is w.counter_page and w.counter_page.isVisible()
    assert w.name_value.isVisible() and w.name_value.text() == PATIENT.psn_name  # as it was
    assert not w.idle.check()  # the idle time starts again from the unlock


def test_unlock_counts_failures_like_login_and_locks_the_account(qtbot, desk):
    w = desk()
    w.clock.advance(5 * 60)
    assert w.idle.check()
    screen = w.lock_screen
    for _ in range(5):
        screen.show_error("")
        qtbot.keyClicks(screen.password, "wrong-password")
        qtbot.keyClick(screen.password, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: screen.error.text() != "", timeout=10_000)
    assert "锁定" in screen.error.text() and "分钟后再试" in screen.error.text()
    screen.show_error("")
    qtbot.keyClicks(screen.password, "correct-horse-1")  # right, but the account is locked
    qtbot.keyClick(screen.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: screen.error.text() != "", timeout=10_000)
    assert w.locked and "锁定" in screen.error.text()


def presettled(qtbot, w) -> None:
    """The card read, one drug picked and the visit pre-settled: 结算 is the next key."""
    w.read_card()
    qtbot.waitUntil(lambda: w._person is not None and w.runner.idle, timeout=WORKER_TIMEOUT_MS)
    qtbot.keyClicks(w.picker.search_box, "xbdp")
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_Return)
    w.presettle()
    qtbot.waitUntil(lambda: w.settle_button.isEnabled(), timeout=WORKER_TIMEOUT_MS)


def test_a_settlement_in_flight_when_the_desk_locks_completes_and_shows_after_unlock(
        qtbot, desk, services, home_settings):
    network_url, reader_path = services
    w = desk(settings=replace(home_settings, network_url=network_url), reader_url=reader_path)
    w.confirm_settle = lambda split: True
    presettled(qtbot, w)

    w.settle()
    assert w.runner.busy  # the 2207 call is running on the worker
    w.clock.advance(5 * 60)
    assert w.idle.check() and w.locked
    assert "继续完成" in w.lock_screen.note.text()
    qtbot.waitUntil(lambda: w.runner.idle, timeout=WORKER_TIMEOUT_MS)
    assert w.locked and not w.counter_page.isVisible()  # finished behind the lock
    with w.counter.engine.connect() as conn:
        assert conn.execute(select(Visit.state)).scalars().all() == ["settled"]
    assert w.focusWidget() is w.lock_screen.password  # the result did not pull focus from the lock

    qtbot.keyClicks(w.lock_screen.password, "correct-horse-1")
    qtbot.keyClick(w.lock_screen.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.locked, timeout=10_000)
    assert w.setl_id_value.isVisible() and w.setl_id_value.text() not in ("", "—")
    assert w.message.property("kind") == "ok" and "结算成功" in w.message.text()


# ---- roles on the screen -----------------------------------------------------------------------

EXTRA = ("self_pay", "reprint", "revoke", "reverse", "day_close")


def test_a_worker_sees_revoke_and_the_other_actions_enabled(qtbot, desk):
    w = desk("worker")
    assert w.operator.role == "worker" and not w.read_only
    for action in ("reprint", "revoke", "reverse", "day_close"):
        button = w.action_buttons[action]
        assert button.isEnabled() and button.toolTip() == "", action
    assert w.read_button.isEnabled() and w.read_only_banner is None
    assert "测试worker（村医）" in w.user_label.text()


def test_a_supervisors_window_is_read_only_and_cannot_settle(qtbot, desk):
    w = desk("supervisor")
    assert w.read_only and w.read_only_banner is not None and w.read_only_banner.isVisible()
    assert "（督导员）" in w.user_label.text()
    for button in (w.read_button, w.id_button, w.presettle_button, w.settle_button):
        assert not button.isEnabled()
        assert button.toolTip() == "当前账号没有“结算”的权限"
    assert not w.id_edit.isEnabled()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    qtbot.keyClick(w.focusWidget() or w, Qt.Key.Key_F2)  # the shortcut's handler refuses
    assert not w.runner.busy
    assert w.message.property("kind") == "error" and "结算" in w.message.text()
    qtbot.keyClicks(w.picker.search_box, "xbdp")  # viewing the formulary still works
    assert w.picker.matches.count() >= 1


def test_a_supervisors_window_leaves_unfinished_settlements_to_a_worker(qtbot, desk,
                                                                      home_settings, accounts):
    import os
    import subprocess
    import sys
    from clinic.services import start_reader, start_simulator
    sim = start_simulator(home_settings.home.parent / "insurer.db")
    reader = start_reader()
    try:
        users = accounts(home_settings)
        users.admin()
        env = {**os.environ, "CLINIC_HOME": str(home_settings.home),
               "CLINIC_CRASH_AT": "2207:after_answer",
               "CLINIC_USER": users.LOGIN, "CLINIC_PASSWORD": users.PASSWORD}
        crashed = subprocess.run([sys.executable, "-m", "clinic", "settle", "--reader",
                                  reader.address, "--rx", "xbdp:1:7", "--network", sim.address],
                                 env=env, capture_output=True, text=True, timeout=60)
        assert crashed.returncode == -9, crashed.stderr
        w = desk("supervisor", settings=replace(home_settings, network_url=sim.address))
        w.recover_on_start()
        qtbot.waitUntil(lambda: w.runner.idle and "村医" in w.message.text(),
                        timeout=WORKER_TIMEOUT_MS)
        assert "1 笔结算结果未知" in w.message.text()
        with w.counter.engine.connect() as conn:  # left as the crash left it, for the worker
            assert conn.execute(select(Visit.state)).scalars().all() == ["settling"]
    finally:
        reader.stop()
        sim.stop()


def test_actions_a_role_lacks_are_disabled_with_a_tooltip_naming_the_permission(qtbot, desk):
    w = desk("supervisor")
    names = {"self_pay": "自费收费", "reprint": "补打收据", "revoke": "撤销结算",
             "reverse": "冲正", "day_close": "日结"}
    for action in EXTRA:
        button = w.action_buttons[action]
        assert not button.isEnabled(), action
        assert button.toolTip() == f"当前账号没有“{names[action]}”的权限"


def test_a_handler_refuses_when_called_anyway(qtbot, desk):
    w = desk("supervisor")
    asked: list = []
    w.ask_text = lambda *a: asked.append(a) or "2026000001"
    w.confirm = lambda *a: asked.append(a) or True
    w.confirm_settle = lambda split: asked.append(split) or True
    w._pre = object()  # as if a pre-settlement were on screen
    for handler, name in ((w.revoke, "撤销结算"), (w.reverse, "冲正"), (w.day_close, "日结"),
                          (w.reprint, "补打收据"), (w.settle, "结算"), (w.read_card, "结算")):
        w.show_message("", "info")
        handler()
        assert w.message.property("kind") == "error"
        assert w.message.text() == f"当前账号没有“{name}”的权限"
    assert asked == [] and w.runner.idle  # nothing asked, nothing started
    with w.counter.engine.connect() as conn:
        assert conn.execute(select(Visit.id)).first() is None


def test_a_question_open_when_the_desk_locks_is_answered_cancel(qtbot, desk):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QInputDialog
    w = desk()  # the real ask_text: a modal QInputDialog asking for the 结算号
    seen: list = []

    def idle_while_asking() -> None:
        dialog = QApplication.activeModalWidget()
        seen.append(type(dialog))
        w.clock.advance(5 * 60)
        w.idle.check()

    QTimer.singleShot(100, w, idle_while_asking)
    guard = QTimer(w, singleShot=True, interval=10_000)  # never hang the suite on a dialog
    guard.timeout.connect(lambda: [d.reject() for d in w.findChildren(QDialog)])
    guard.start()
    w.revoke()  # returns once the dialog is gone
    guard.stop()
    assert seen == [QInputDialog]
    assert w.locked and not any(d.isVisible() for d in w.findChildren(QDialog))
    assert w.runner.idle and "撤销" not in w.message.text()  # nothing was started


def test_a_worker_revokes_and_reprints_from_the_other_work_buttons(qtbot, desk, services,
                                                                   home_settings):
    network_url, reader_path = services
    w = desk("worker", settings=replace(home_settings, network_url=network_url),
             reader_url=reader_path)
    w.confirm_settle = lambda split: True
    w.ask_text = lambda title, prompt: "病人要求退药"
    presettled(qtbot, w)
    w.settle()
    qtbot.waitUntil(lambda: w._settlement is not None, timeout=WORKER_TIMEOUT_MS)
    visit_id = w._settlement.visit_id

    qtbot.mouseClick(w.action_buttons["reprint"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.runner.idle and "补打" in w.message.text(), timeout=WORKER_TIMEOUT_MS)
    assert w.message.property("kind") == "ok" and "_reprint.pdf" in w.message.text()

    qtbot.mouseClick(w.action_buttons["revoke"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.runner.idle and w.message.property("kind") != "info",
                    timeout=WORKER_TIMEOUT_MS)
    assert w.message.property("kind") == "ok" and "已撤销结算" in w.message.text(), w.message.text()
    assert w.counter.visit_row(visit_id).state == "revoked"
    assert w.name_value.text() == "—"  # the revoked visit left the counter


def test_with_the_network_down_a_worker_takes_self_pay_for_the_prescription_on_screen(
        qtbot, desk):
    w = desk("worker")  # the insurer is unreachable: no patient lookup, no settlement
    asked: list = []
    w.confirm = lambda title, text: asked.append(text) or True
    qtbot.keyClicks(w.picker.search_box, "xbdp")
    qtbot.keyClick(w.picker.search_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.action_buttons["self_pay"].isEnabled())
    total = sum(it.amount_fen for it in w._items)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    qtbot.keyClick(w.focusWidget() or w, Qt.Key.Key_F6)
    qtbot.waitUntil(lambda: w.runner.idle and w._settlement is not None, timeout=WORKER_TIMEOUT_MS)
    assert len(asked) == 1 and "现金" in asked[0]
    assert w.message.property("kind") == "ok" and "自费" in w.message.text()
    row = w.counter.visit_row(w._settlement.visit_id)
    assert row.state == "self_paid" and row.self_pay
    assert w._settlement.split.psn_cash_pay == total and w._settlement.split.fund_pay_sumamt == 0
    assert not w.action_buttons["self_pay"].isEnabled()  # taken once, not twice


def test_the_idle_watch_takes_a_datetime_clock_and_zero_minutes_never_locks(qtbot):
    from clinic.gui.idle_lock import IdleWatch
    now = [datetime(2026, 11, 30, 9, 0)]
    watch = IdleWatch(2, clock=lambda: now[0])
    fired: list = []
    watch.idle.connect(lambda: fired.append(True))
    now[0] += timedelta(minutes=1, seconds=59)
    assert not watch.check()
    now[0] += timedelta(seconds=1)
    assert watch.check() and fired == [True]
    assert not watch.check() and fired == [True]  # once, until reset
    watch.reset()
    assert not watch.check()
    watch.stop()

    never = IdleWatch(0, clock=lambda: now[0])
    now[0] += timedelta(days=1)
    assert not never.check() and not never.timer.isActive()
    never.stop()
