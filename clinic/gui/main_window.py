"""The counter window: card → patient → drugs → verdicts → pre-settle → settle → receipt.

Widgets are touched only on the GUI thread. Every Counter call that reaches the card reader,
the network or the database (including the rule check, which reads dispensing history) runs on
the TaskRunner's single worker. Only the drug search and resolve_items, pure in-memory formulary
lookups, run inline so the match list follows every keystroke.

Who is signed in decides what the window offers: an action the role lacks (clinic.roles) is
disabled with a tooltip naming the missing permission, and its handler asks `require` again
before acting. After `idle_lock_minutes` without a key press or click the counter page is
replaced by a lock screen that needs the signed-in user's password; work already running
finishes behind it and its result is there after unlocking.

The window is put together from mixins: the other work (其他业务) is in `other_work`, locking
and unlocking in `lock_screen`, the default dialogs in `prompts`.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QEvent, QUrl, Qt
from PySide6.QtGui import QColor, QDesktopServices, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QFormLayout, QFrame, QGridLayout,
                               QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QMainWindow, QPushButton, QStackedWidget,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from clinic.crypto import mask_id
from clinic.errors import CounterError, NotAllowed, OutcomeUnknownProblem
from clinic.roles import require
from formulary.diagnoses import DiagnosisList
from settlement.money import yuan

from .access import may, missing_permission, role_name
from .diagnosis_box import DiagnosisBox
from .drug_picker import DrugPicker
from .i18n import tr
from .idle_lock import IdleWatch, LockScreen
from .lock_screen import LockActions
from .other_work import EXTRA_ACTIONS, OtherWorkActions
from .prompts import Prompts
from .workers import TaskRunner

if TYPE_CHECKING:  # the window is built around an injected Counter; no import cost or cycle
    from clinic.counter import Counter

log = logging.getLogger(__name__)

TRAINING_TEXT = "培训模式 — 不产生真实费用"
DEFAULT_DIAGNOSIS = "I10"  # the commonest visit at a village counter: a hypertension refill

VERDICT_STYLE = {  # outcome -> (label, text colour, background)
    "block": ("禁止", "#b71c1c", "#ffebee"),
    "warn": ("提醒", "#e65100", "#fff3e0"),
    "pass": ("通过", "#1b5e20", "#e8f5e9"),
}

STYLE = """
QMainWindow, QWidget { font-size: 15px; }
QGroupBox { font-weight: bold; border: 1px solid #b0bec5; border-radius: 6px;
            margin-top: 14px; padding: 10px 8px 8px 8px; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; }
QLabel#trainingBanner { background: #c62828; color: white; font-size: 22px; font-weight: bold;
                        padding: 8px; }
QLabel#readOnlyBanner { background: #455a64; color: white; font-size: 18px; font-weight: bold;
                        padding: 6px; }
QLabel#message { padding: 8px 12px; font-size: 17px; border-radius: 4px; }
QLabel#message[kind="error"] { background: #ffebee; color: #b71c1c; border: 2px solid #c62828; }
QLabel#message[kind="info"] { background: #e3f2fd; color: #0d47a1; border: 1px solid #90caf9; }
QLabel#message[kind="ok"] { background: #e8f5e9; color: #1b5e20; border: 1px solid #81c784; }
QLabel#patientName { font-size: 22px; font-weight: bold; }
QLabel.amount { font-size: 18px; }
QLabel#splitCash { font-size: 26px; font-weight: bold; color: #b71c1c; }
QLabel#rxTotal { font-size: 17px; font-weight: bold; }
QPushButton { padding: 6px 14px; }
QStatusBar QLabel { padding: 0 12px; }
QPushButton#readCard, QPushButton#presettle, QPushButton#settle { font-size: 17px;
                                                                 padding: 10px 16px; }
QPushButton#settle:enabled { background: #2e7d32; color: white; font-weight: bold; }
"""


def _value_label(name: str, amount: bool = False) -> QLabel:
    label = QLabel("—", objectName=name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if amount:
        label.setProperty("class", "amount")
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return label


def _looks_like_id_number(text: str) -> bool:
    """Typed ID numbers are digits (last may be X); anything else is taken as a scanned voucher."""
    return len(text) <= 18 and text[:17].isdigit()


class MainWindow(OtherWorkActions, LockActions, Prompts, QMainWindow):
    """One counter. `counter` is owned by the caller (it closes it); `reader_url` is the card reader.

    `store` and `session` (clinic.auth) are who signed in: with them the desk locks after
    `settings.idle_lock_minutes` idle and unlocks with that user's password. `idle_clock` returns
    monotonic seconds (or datetimes); tests pass a fake one and call `idle.check()` themselves.
    """

    def __init__(self, counter: "Counter", reader_url: str, parent: QWidget | None = None, *,
                 store=None, session=None,
                 idle_clock: Callable[[], Any] = time.monotonic):
        super().__init__(parent)
        self.counter = counter
        self.reader_url = reader_url
        self.settings = counter.settings
        self.operator = counter.operator
        self.store, self.session = store, session
        self.runner = TaskRunner(self)
        self.runner.busyChanged.connect(lambda _busy: self._update_actions())
        self.lock_runner = TaskRunner(self)  # unlock checks never wait behind a settlement
        # Replaceable for tests and kiosks; the defaults ask with a dialog.
        self.confirm_settle: Callable[[Any], bool] = self._ask_confirm_settle
        self.ask_override_reason: Callable[[Any], str | None] = self._ask_override_reason
        self.ask_text: Callable[[str, str], str | None] = self._ask_text
        self.confirm: Callable[[str, str], bool] = self._ask_yes_no
        self.locked = False
        self._card = None

        self._cred = None
        self._person = None
        self._items: list = []
        self._strengths: dict[str, str] = {}
        self._verdicts: list = []
        self._overrides: dict[str, str] = {}
        self._visit_id: str | None = None
        self._pre = None
        self._settlement = None
        self._outcome_unknown = False
        self._check_generation = 0

        self._build()
        self._shortcuts()
        self.reset_visit()
        if self.read_only:
            self.show_message(tr("督导员账号只能查看，不能结算"), "info")
        else:
            self.show_message(tr("请先读卡或输入身份证号"), "info")
        self.idle = IdleWatch(self.settings.idle_lock_minutes if store is not None else 0,
                              clock=idle_clock, parent=self)
        self.idle.idle.connect(self.lock)

    @property
    def read_only(self) -> bool:
        """A role that may not settle (the supervisor) views the counter; it does not work it."""
        return not may(self.operator, "settle")

    def who(self) -> str:
        return f"{self.operator.opter_name}（{role_name(self.operator.role)}）"

    # ---- construction ------------------------------------------------------------------

    def _build(self) -> None:
        title = f"{tr('村卫生室医保结算')} — {self.settings.fixmedins_name}"
        if self.settings.training:
            title = f"【{tr(TRAINING_TEXT)}】 {title}"
        self.setWindowTitle(title)
        self.setStyleSheet(STYLE)

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(10, 6, 10, 6)
        self.training_banner: QLabel | None = None
        if self.settings.training:
            self.training_banner = QLabel(tr(TRAINING_TEXT), objectName="trainingBanner")
            self.training_banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
            outer.addWidget(self.training_banner)
        self.read_only_banner: QLabel | None = None
        if self.read_only:
            self.read_only_banner = QLabel(tr("只读：当前账号（{role}）不能结算",
                                              role=role_name(self.operator.role)),
                                           objectName="readOnlyBanner")
            self.read_only_banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
            outer.addWidget(self.read_only_banner)
        self.message = QLabel("", objectName="message")
        self.message.setWordWrap(True)
        self.message.setMinimumHeight(44)
        outer.addWidget(self.message)

        body = QHBoxLayout()
        body.setSpacing(10)
        outer.addLayout(body, 1)
        body.addLayout(self._build_patient(), 3)
        body.addWidget(self._build_prescription(), 6)
        body.addLayout(self._build_settlement(), 3)
        # The counter page and the lock screen share one place: while locked the counter page
        # is not shown at all, so nothing of the visit can be seen behind or through the lock.
        self.counter_page = central
        self.lock_screen = LockScreen(self.who())
        self.lock_screen.unlock.connect(self.try_unlock)
        self.lock_screen.quit.connect(self.close)
        self.pages = QStackedWidget(objectName="pages")
        self.pages.addWidget(self.counter_page)
        self.pages.addWidget(self.lock_screen)
        self.setCentralWidget(self.pages)

        net = QLabel(tr("医保平台：{url}", url=self.settings.network_url), objectName="networkStatus")
        self.user_label = QLabel(tr("当前用户：{who}", who=self.who()), objectName="currentUser")
        self.statusBar().addPermanentWidget(self.user_label)
        self.statusBar().addPermanentWidget(net)
        if self.settings.training:
            tag = QLabel(tr(TRAINING_TEXT))
            tag.setStyleSheet("color: white; background: #c62828; font-weight: bold; padding: 2px 6px;")
            self.statusBar().addPermanentWidget(tag)

        # The visit's path first; the other work (其他业务) last, after 下一位.
        chain = [self.read_button, self.id_edit, self.diagnosis, self.emergency,
                 self.picker.search_box, self.picker.qty, self.picker.days, self.picker.add_button,
                 self.rx_table, self.presettle_button, self.settle_button,
                 self.open_receipt_button, self.next_button, *self.action_buttons.values()]
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)

    def _build_patient(self) -> QVBoxLayout:
        col = QVBoxLayout()
        card_box = QGroupBox(tr("病人"))
        grid = QGridLayout(card_box)
        self.read_button = QPushButton(tr("读卡 (F2)"), objectName="readCard")
        self.read_button.clicked.connect(self.read_card)
        grid.addWidget(self.read_button, 0, 0, 1, 2)
        id_label = QLabel(tr("身份证号 / 电子凭证"))
        self.id_edit = QLineEdit(objectName="idNumber")
        # A keyboard-wedge QR scanner types the voucher code here and presses Enter itself.
        self.id_edit.setPlaceholderText(tr("身份证号或扫码，回车"))
        self.id_edit.setMaxLength(256)  # a scanned voucher code is longer than an ID number
        self.id_edit.returnPressed.connect(self.lookup_id_number)
        id_label.setBuddy(self.id_edit)
        grid.addWidget(id_label, 1, 0, 1, 2)
        grid.addWidget(self.id_edit, 2, 0)
        self.id_button = QPushButton(tr("查询"), objectName="idLookup")
        self.id_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Enter in the field does it
        self.id_button.clicked.connect(self.lookup_id_number)
        grid.addWidget(self.id_button, 2, 1)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        grid.addWidget(line, 3, 0, 1, 2)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.name_value = _value_label("patientName")
        self.certno_value = _value_label("patientId")
        self.insutype_value = _value_label("patientInsutype")
        self.insutype_value.setWordWrap(True)
        self.age_value = _value_label("patientAge")
        self.balance_value = _value_label("patientBalance")
        form.addRow(tr("姓名"), self.name_value)
        form.addRow(tr("身份证号"), self.certno_value)
        form.addRow(tr("险种"), self.insutype_value)
        form.addRow(tr("年龄"), self.age_value)
        form.addRow(tr("账户余额"), self.balance_value)
        grid.addLayout(form, 4, 0, 1, 2)
        col.addWidget(card_box)

        dx_box = QGroupBox(tr("诊断"))
        dx = QVBoxLayout(dx_box)
        self.diagnosis = DiagnosisBox(DiagnosisList.load_default(), objectName="diagnosis")
        self.diagnosis.codeChanged.connect(lambda _code: self._prescription_changed())
        dx.addWidget(self.diagnosis)
        self.emergency = QCheckBox(tr("急诊处方（最多3天）"), objectName="emergency")
        self.emergency.toggled.connect(lambda _on: self._prescription_changed())
        dx.addWidget(self.emergency)
        col.addWidget(dx_box)
        col.addWidget(self._build_more())
        col.addStretch(1)
        return col

    def _build_prescription(self) -> QGroupBox:
        box = QGroupBox(tr("处方"))
        col = QVBoxLayout(box)
        self.picker = DrugPicker(self.counter.formulary.search)
        self.picker.chosen.connect(self.add_drug)
        col.addWidget(self.picker)

        self.rx_table = QTableWidget(0, 4, objectName="rxTable")
        self.rx_table.setHorizontalHeaderLabels([tr("药品"), tr("数量"), tr("天数"), tr("金额")])
        header = self.rx_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in (1, 2, 3):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.rx_table.verticalHeader().setVisible(True)
        self.rx_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.rx_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.rx_table.setMinimumHeight(150)
        col.addWidget(self.rx_table, 1)
        self.rx_table.installEventFilter(self)  # Del / Backspace remove the selected line

        row = QHBoxLayout()
        self.delete_button = QPushButton(tr("删除所选 (Del)"), objectName="deleteDrug")
        self.delete_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.delete_button.clicked.connect(self.delete_selected)
        row.addWidget(self.delete_button)
        row.addStretch(1)
        self.total_value = QLabel("", objectName="rxTotal")
        row.addWidget(self.total_value)
        col.addLayout(row)

        col.addWidget(QLabel(tr("处方审核")))
        self.verdict_list = QListWidget(objectName="verdicts")
        self.verdict_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.verdict_list.setWordWrap(True)
        self.verdict_list.setMinimumHeight(110)
        col.addWidget(self.verdict_list, 2)
        return box

    def _build_settlement(self) -> QVBoxLayout:
        col = QVBoxLayout()
        box = QGroupBox(tr("结算"))
        v = QVBoxLayout(box)
        self.presettle_button = QPushButton(tr("预结算 (F5)"), objectName="presettle")
        self.presettle_button.clicked.connect(self.presettle)
        self.settle_button = QPushButton(tr("结算 (F9)"), objectName="settle")
        self.settle_button.clicked.connect(self.settle)
        v.addWidget(self.presettle_button)
        v.addWidget(self.settle_button)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.split_labels: dict[str, QLabel] = {}
        for key, text, name in (("medfee_sumamt", "医疗费总额", "splitMedfee"),
                                ("fund_pay_sumamt", "统筹基金支付", "splitFund"),
                                ("acct_pay", "个人账户支付", "splitAcct"),
                                ("psn_cash_pay", "现金支付", "splitCash"),
                                ("balc", "结算后账户余额", "splitBalance")):
            label = _value_label(name, amount=True)
            self.split_labels[key] = label
            form.addRow(tr(text), label)
        v.addLayout(form)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        v.addWidget(line)
        v.addWidget(QLabel(tr("结算号")))
        self.setl_id_value = _value_label("setlId")
        self.setl_id_value.setWordWrap(True)
        v.addWidget(self.setl_id_value)
        v.addWidget(QLabel(tr("收据")))
        self.receipt_value = _value_label("receiptPath")
        self.receipt_value.setWordWrap(True)
        v.addWidget(self.receipt_value)
        self.open_receipt_button = QPushButton(tr("打开收据"), objectName="openReceipt")
        self.open_receipt_button.clicked.connect(self.open_receipt)
        v.addWidget(self.open_receipt_button)
        col.addWidget(box)

        self.next_button = QPushButton(tr("下一位 (F12)"), objectName="nextPatient")
        self.next_button.clicked.connect(self.next_patient)
        col.addWidget(self.next_button)
        col.addStretch(1)
        return col

    def _shortcuts(self) -> None:
        # Enter presses a focused button too, not only Space: workers reach for Enter.
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(True)
        keys = [(Qt.Key.Key_F2, self.read_card), (Qt.Key.Key_F5, self.presettle),
                (Qt.Key.Key_F9, self.settle), (Qt.Key.Key_F12, self.next_patient)]
        keys += [(key, self.action_buttons[action].click) for action, _t, _n, key in EXTRA_ACTIONS]
        # Off while locked: no key reaches the counter behind the lock screen.
        self._shortcut_list = [QShortcut(QKeySequence(key), self, activated=slot)
                               for key, slot in keys]

    def eventFilter(self, obj, event) -> bool:
        if (obj is self.rx_table and event.type() == QEvent.Type.KeyPress
                and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)):
            self.delete_selected()
            return True
        return super().eventFilter(obj, event)

    # ---- messages ----------------------------------------------------------------------

    def show_message(self, text: str, kind: str = "info") -> None:
        """kind: info | ok | error. The one place the worker's outcome is told to the user."""
        self.message.setText(text)
        self.message.setProperty("kind", kind)
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)

    def show_error(self, exc: BaseException) -> None:
        if isinstance(exc, CounterError):
            log.warning("%s: %s", type(exc).__name__, exc.detail)
            self.show_message(exc.message, "error")
        else:
            log.error("unexpected error in counter call", exc_info=exc)
            self.show_message(f"{tr('系统内部错误，请联系管理员。')}（{type(exc).__name__}）", "error")

    def _permit(self, widget: QWidget, action: str, enabled: bool) -> None:
        """Enabled only if the role has `action`; if it lacks it, the tooltip says which."""
        allowed = may(self.operator, action)
        widget.setEnabled(allowed and enabled)
        widget.setToolTip("" if allowed else missing_permission(self.operator, action))

    def _update_actions(self) -> None:
        busy = self.runner.busy
        settled = self._settlement is not None or self._outcome_unknown
        # Reading a card or an ID is the first step of settling: a viewer does not start visits.
        for w in (self.read_button, self.id_edit, self.id_button):
            self._permit(w, "settle", not busy)
        editable = not busy and not settled
        self.picker.setEnabled(editable)
        self.delete_button.setEnabled(editable and bool(self._items))
        self.diagnosis.setEnabled(editable)
        self.emergency.setEnabled(editable)
        self._permit(self.presettle_button, "settle",
                     editable and self._person is not None and bool(self._items))
        self._permit(self.settle_button, "settle", not busy and self._pre is not None and not settled)
        self.open_receipt_button.setEnabled(bool(self._settlement and self._settlement.receipt_path))
        self.next_button.setEnabled(not busy)
        self._update_lock_note()
        buttons = self.action_buttons
        self._permit(buttons["self_pay"], "self_pay", editable and bool(self._items))
        self._permit(buttons["reprint"], "reprint", not busy)
        self._permit(buttons["revoke"], "revoke", not busy and not self._outcome_unknown)
        self._permit(buttons["reverse"], "reverse", not busy)
        self._permit(buttons["day_close"], "day_close", not busy)

    def allowed(self, action: str) -> bool:
        """Every handler asks again (a shortcut, a stale button, a script): refuse in Chinese."""
        try:
            require(self.operator, action)
        except NotAllowed as exc:
            self.show_error(exc)
            return False
        if self.locked:
            log.warning("%s refused: the desk is locked", action)
            return False
        return True

    # ---- the patient -------------------------------------------------------------------

    def read_card(self) -> None:
        if not self.allowed("settle"):
            return
        if self.runner.busy:
            self.show_message(tr("正在处理，请稍候"), "info")
            return
        counter, url = self.counter, self.reader_url

        def work():
            card = counter.read_card(url)
            cred = counter.credential_from_card(card)
            return cred, counter.lookup(cred), card

        self.show_message(tr("正在读卡……"), "info")
        self.runner.submit(work, self._on_person, self.show_error)

    def lookup_id_number(self) -> None:
        if not self.allowed("settle"):
            return
        if self.runner.busy:
            self.show_message(tr("正在处理，请稍候"), "info")
            return
        text, counter = self.id_edit.text().strip(), self.counter
        if _looks_like_id_number(text):
            try:
                cred = counter.credential_from_id_number(text)
            except CounterError as exc:
                self.show_error(exc)
                self._focus(self.id_edit)
                self.id_edit.selectAll()
                return
            work = lambda: (cred, counter.lookup(cred))  # noqa: E731
        else:
            def work():
                from clinic.voucher import credential_from_voucher
                voucher = credential_from_voucher(counter, text)  # the hub: off the GUI thread
                return voucher, counter.lookup(voucher)
        self.show_message(tr("正在查询参保信息……"), "info")
        self.runner.submit(work, self._on_person, self.show_error)

    def _on_person(self, result) -> None:
        cred, person, *card = result
        self.reset_visit()
        self._cred, self._person = cred, person
        self._card = card[0] if card else None  # a self-pay receipt names the card holder
        self.name_value.setText(person.psn_name)
        self.certno_value.setText(mask_id(person.certno))
        self.insutype_value.setText(person.insutype_name)
        self.age_value.setText(tr("{n} 岁", n=person.age))
        self.balance_value.setText(f"{yuan(person.balc_fen)} {tr('元')}")
        self.id_edit.clear()
        self.show_message(tr("已读取：{name}。请输入药品。", name=person.psn_name), "ok")
        self._update_actions()
        self._focus(self.picker.search_box)

    # ---- the prescription --------------------------------------------------------------

    def add_drug(self, drug, qty: int, days: int | None) -> None:
        try:
            (item,) = self.counter.resolve_items([(drug.code, qty, days)])
        except CounterError as exc:
            self.show_error(exc)
            return
        self._strengths[item.code] = getattr(drug, "strength", "")
        self._items.append(item)
        self._prescription_changed()

    def delete_selected(self) -> None:
        if self._settlement is not None or self.runner.busy:
            return
        rows = sorted({i.row() for i in self.rx_table.selectionModel().selectedRows()}, reverse=True)
        if not rows and self.rx_table.currentRow() >= 0:
            rows = [self.rx_table.currentRow()]
        for r in rows:
            del self._items[r]
        if rows:
            self._prescription_changed()

    def _diagnosis_code(self) -> str | None:
        return self.diagnosis.code()

    def _prescription_changed(self) -> None:
        if self._settlement is not None:
            return
        if self._pre is not None:
            # The pre-settled visit no longer matches what is on screen; F5 makes a new one.
            self._clear_presettlement()
            self.show_message(tr("处方已修改，请重新预结算"), "info")
        self._overrides.clear()
        self._fill_table()
        self._update_actions()
        self._refresh_verdicts()

    def _refresh_verdicts(self) -> None:
        """Live verdicts on the worker (the rules read this clinic's history); stale answers dropped."""
        self._check_generation += 1
        generation = self._check_generation
        if not self._items:
            self._verdicts = []
            self._fill_verdicts([])
            return
        counter, items, person = self.counter, tuple(self._items), self._person
        diagnosis, emergency = self._diagnosis_code(), self.emergency.isChecked()

        def done(verdicts) -> None:
            if generation == self._check_generation:
                self._verdicts = list(verdicts)
                self._fill_verdicts(self._verdicts)

        def failed(exc: BaseException) -> None:
            if generation == self._check_generation:
                self.show_error(exc)

        diagnoses = (diagnosis,) if diagnosis else ()
        self.runner.submit(lambda: counter.check(items, diagnoses, emergency, person), done,
                           failed, quiet=True)

    def _fill_table(self) -> None:
        self.rx_table.setRowCount(len(self._items))
        for r, it in enumerate(self._items):
            strength = self._strengths.get(it.code, "")
            cells = (f"{it.name} {strength}".strip(), f"{it.qty} {it.unit}".strip(), str(it.days),
                     yuan(it.amount_fen))
            for c, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if c:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.rx_table.setItem(r, c, cell)
        total = sum(it.amount_fen for it in self._items)
        self.total_value.setText(f"{tr('合计')} {yuan(total)} {tr('元')}" if self._items else "")

    def _fill_verdicts(self, verdicts) -> None:
        self.verdict_list.clear()
        order = {"block": 0, "warn": 1, "pass": 2}
        for v in sorted(verdicts, key=lambda v: order.get(v.outcome, 3)):
            label, fg, bg = VERDICT_STYLE.get(v.outcome, (v.outcome, "#000000", "#ffffff"))
            item = QListWidgetItem(f"【{tr(label)}】{v.message}")
            item.setForeground(QColor(fg))
            item.setBackground(QColor(bg))
            item.setData(Qt.ItemDataRole.UserRole, v.outcome)
            item.setToolTip(f"{v.rule_id} v{v.rule_version}")
            if v.outcome != "pass":
                f = QFont(item.font())
                f.setBold(True)
                item.setFont(f)
            self.verdict_list.addItem(item)

    # ---- money -------------------------------------------------------------------------

    def presettle(self) -> None:
        if not self.allowed("settle"):
            return
        if self.runner.busy:
            self.show_message(tr("正在处理，请稍候"), "info")
            return
        if self._settlement is not None or self._outcome_unknown:
            return
        if self._person is None:
            self.show_message(tr("请先读卡或输入身份证号"), "error")
            return
        if not self._items:
            self.show_message(tr("请先添加药品"), "error")
            self._focus(self.picker.search_box)
            return
        if self._diagnosis_code() is None:
            self.show_message(tr("请选择诊断（可输入拼音首字母，如 gxy）"), "error")
            self._focus(self.diagnosis)
            return
        counter = self.counter
        person, cred = self._person, self._cred
        items, diagnosis = tuple(self._items), self._diagnosis_code()
        emergency, overrides = self.emergency.isChecked(), dict(self._overrides)

        def work():
            verdicts = counter.check(items, (diagnosis,), emergency, person)
            stopping = counter.unresolved_verdicts(verdicts, overrides)
            if stopping:
                counter.record_block(stopping, person, items)
                return "stopped", verdicts, stopping, None, None
            visit_id = counter.open_visit(person, cred, items, verdicts, diagnosis, overrides)
            counter.upload_fees(visit_id)
            return "ok", verdicts, [], visit_id, counter.presettle(visit_id)

        self._clear_presettlement()
        self.show_message(tr("正在预结算……"), "info")
        self.runner.submit(work, self._on_presettled, self._on_presettle_error)

    def _on_presettled(self, result) -> None:
        status, verdicts, stopping, visit_id, pre = result
        self._verdicts = list(verdicts)
        self._fill_verdicts(self._verdicts)
        if status == "stopped":
            blocks = [v for v in stopping if v.outcome == "block"]
            if blocks:
                self.show_message(tr("处方未通过审核：{msg}",
                                     msg="；".join(v.message for v in blocks)), "error")
                self._update_actions()
                return
            for v in stopping:  # warnings only: each may be overridden with a stated reason
                reason = self.ask_override_reason(v)
                if not reason:
                    self.show_message(tr("处方未通过审核：{msg}", msg=v.message), "error")
                    self._update_actions()
                    return
                self._overrides[v.rule_id] = reason
            self.presettle()
            return
        self._visit_id, self._pre = visit_id, pre
        self._show_split(pre.split)
        self.show_message(tr("预结算完成，请核对金额后按 F9 结算"), "ok")
        self._update_actions()
        self._focus(self.settle_button)

    def _on_presettle_error(self, exc: BaseException) -> None:
        self._clear_presettlement()  # the library marked the visit failed; F5 starts a new one
        self.show_error(exc)
        self._update_actions()

    def settle(self) -> None:
        if not self.allowed("settle"):
            return
        if self.runner.busy:
            self.show_message(tr("正在处理，请稍候"), "info")
            return
        if self._settlement is not None or self._outcome_unknown:
            return
        if self._pre is None:
            self.show_message(tr("请先按 F5 预结算") if self._items else tr("请先添加药品"), "error")
            return
        if not self.confirm_settle(self._pre.split):
            self.show_message(tr("已取消，未结算"), "info")
            return
        counter, visit_id, pre = self.counter, self._visit_id, self._pre
        self.show_message(tr("正在结算……"), "info")
        self.runner.submit(lambda: counter.settle(visit_id, pre), self._on_settled,
                           self._on_settle_error)
        self._update_actions()

    def _on_settled(self, settlement) -> None:
        self._settlement = settlement
        self._show_split(settlement.split)
        self.setl_id_value.setText(settlement.setl_id)
        path = settlement.receipt_path or ""
        # Zero-width spaces after separators let a long path wrap instead of being clipped.
        self.receipt_value.setText(path.replace("/", "/\u200b") if path else "—")
        self.receipt_value.setToolTip(path)
        self.show_message(tr("结算成功，请打印收据交给病人"), "ok")
        self._update_actions()
        self._focus(self.open_receipt_button)

    def _on_settle_error(self, exc: BaseException) -> None:
        if isinstance(exc, OutcomeUnknownProblem):
            # Money may have moved: no second attempt from this screen.
            self._outcome_unknown = True
        else:
            self._clear_presettlement()
        self.show_error(exc)
        self._update_actions()

    def _show_split(self, split) -> None:
        for key, label in self.split_labels.items():
            label.setText(f"{yuan(getattr(split, key))} {tr('元')}")

    def _clear_presettlement(self) -> None:
        if self._visit_id is not None and self._settlement is None and not self._outcome_unknown:
            # A pre-settled visit that will not be settled is withdrawn (2202), not left open.
            visit_id, counter = self._visit_id, self.counter
            self.runner.submit(lambda: counter.cancel_visit(visit_id, "处方修改或取消"),
                               lambda _r: None, lambda exc: log.warning("cancel failed: %s", exc),
                               quiet=True)
        self._visit_id, self._pre = None, None
        for label in self.split_labels.values():
            label.setText("—")

    def open_receipt(self) -> None:
        if self._settlement and self._settlement.receipt_path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self._settlement.receipt_path))

    # ---- between patients --------------------------------------------------------------

    def reset_visit(self) -> None:
        self._cred = self._person = self._card = None
        self._items.clear()
        self._strengths.clear()
        self._verdicts = []
        self._overrides.clear()
        self._settlement = None
        self._outcome_unknown = False
        self._check_generation += 1  # a live check still running belongs to the last patient
        self._clear_presettlement()
        self.diagnosis.set_code(DEFAULT_DIAGNOSIS)
        self.emergency.setChecked(False)
        for label in (self.name_value, self.certno_value, self.insutype_value, self.age_value,
                      self.balance_value, self.setl_id_value, self.receipt_value):
            label.setText("—")
        self.picker.reset()
        self._fill_table()
        self._fill_verdicts([])
        self._update_actions()

    def next_patient(self) -> None:
        if self.runner.busy:
            self.show_message(tr("正在处理，请稍候"), "info")
            return
        self.reset_visit()
        self.show_message(tr("请先读卡或输入身份证号"), "info")
        self._focus(self.read_button)

    def recover_on_start(self) -> None:
        """Before the first patient: resolve what a crash left in flight and say what happened."""
        from clinic.recovery import recover
        counter = self.counter
        if self.read_only:
            # Finishing a settlement is settling: a viewer only hears that some are pending.
            def pending(left) -> None:
                if left:
                    self.show_message(tr("有 {n} 笔结算结果未知，需村医登录后处理", n=len(left)),
                                      "warn")

            self.runner.submit(counter.unresolved_visits, pending, self.show_error)
            return

        def done(notes) -> None:
            left = counter.unresolved_visits()
            if notes or left:
                text = "\n".join(n.message for n in notes)
                if left:
                    text += ("\n" if text else "") + tr("仍有 {n} 笔结算结果未知，请勿重复收费", n=len(left))
                self.show_message(text, "warn" if left else "info")

        self.runner.submit(lambda: recover(counter), done, self.show_error)

    # ---- the lock ----------------------------------------------------------------------

    def _focus(self, widget: QWidget) -> None:
        """Focus moves inside the counter only while it is shown: never away from the lock."""
        if not self.locked:
            widget.setFocus()

    def closeEvent(self, event) -> None:
        # A running settle is allowed to finish so its outcome is recorded, not abandoned.
        self.idle.stop()
        self.lock_runner.shutdown()
        self.runner.shutdown()
        super().closeEvent(event)
