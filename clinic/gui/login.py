"""Before the counter opens: the first administrator on a new PC, else a login, then (when the
administrator reset it) a new password.

Password hashing (Argon2id, ~0.2 s) runs on a TaskRunner, never on the GUI thread. Every error
is shown in the dialog in Chinese (the AuthError's message); the details go to the log.
"""
from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any, Callable

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit,
                               QVBoxLayout, QWidget)

from clinic.errors import CounterError

from .i18n import tr
from .workers import TaskRunner

log = logging.getLogger(__name__)

MIN_PASSWORD = 8

DIALOG_STYLE = """
QDialog, QWidget { font-size: 16px; }
QLabel#authTitle { font-size: 20px; font-weight: bold; }
QLabel#authError { color: #b71c1c; background: #ffebee; border: 2px solid #c62828;
                   border-radius: 4px; padding: 6px 10px; }
QLabel#authError[empty="true"] { border: none; background: transparent; padding: 0; }
QLineEdit { padding: 4px; min-width: 16em; }
QPushButton { padding: 6px 16px; }
"""


def locked_text(exc: Any, clock: Callable[[], datetime] = datetime.now) -> str:
    """An AccountLocked's message, with the minutes to wait added when the message lacks them."""
    text = exc.message
    until = getattr(exc, "until", None)
    if until is not None and "分钟" not in text:
        try:
            minutes = max(1, math.ceil((until - clock()).total_seconds() / 60))
        except TypeError:  # aware vs naive: the message alone must do
            return text
        text += tr("（请 {n} 分钟后再试）", n=minutes)
    return text


def auth_error_text(exc: BaseException, clock: Callable[[], datetime] = datetime.now) -> str:
    if isinstance(exc, CounterError):
        log.warning("%s: %s", type(exc).__name__, exc.detail)
        if hasattr(exc, "until"):
            return locked_text(exc, clock)
        return exc.message
    log.error("unexpected error while signing in", exc_info=exc)
    return f"{tr('系统内部错误，请联系管理员。')}（{type(exc).__name__}）"


def password_problem(password: str, again: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return tr("密码至少 {n} 位", n=MIN_PASSWORD)
    if password != again:
        return tr("两次输入的密码不一致")
    return None


def _password_edit(name: str) -> QLineEdit:
    edit = QLineEdit(objectName=name)
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setMaxLength(128)
    return edit


class _AuthDialog(QDialog):
    """A form whose OK runs one store call off the GUI thread; `session` holds the answer."""

    def __init__(self, title: str, heading: str, *, clock: Callable[[], datetime] = datetime.now,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setStyleSheet(DIALOG_STYLE)
        self.setModal(True)
        self.clock = clock
        self.session = None
        self._enter_wired = False
        self.runner = TaskRunner(self)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(heading, objectName="authTitle"))
        self.form = QFormLayout()
        layout.addLayout(self.form)
        self.error = QLabel("", objectName="authError")
        self.error.setWordWrap(True)
        self.error.setProperty("empty", True)
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox()
        self.ok_button = self.buttons.addButton(self.ok_text(), QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok_button.setObjectName("authOk")
        self.cancel_button = self.buttons.addButton(tr("取消"), QDialogButtonBox.ButtonRole.RejectRole)
        self.cancel_button.setObjectName("authCancel")
        # Enter in any field submits (see showEvent); no button is a "default" that Enter could
        # press instead: with autoDefault, whichever button last had focus would take it.
        for button in (self.ok_button, self.cancel_button):
            button.setAutoDefault(False)
            button.setDefault(False)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def ok_text(self) -> str:
        return tr("确定")

    def fields(self) -> list[QLineEdit]:
        return self.findChildren(QLineEdit)

    def showEvent(self, event) -> None:
        if not self._enter_wired:  # the subclass has added its fields by now
            self._enter_wired = True
            for edit in self.fields():
                edit.returnPressed.connect(self.submit)
        super().showEvent(event)

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setProperty("empty", not text)
        self.error.style().unpolish(self.error)
        self.error.style().polish(self.error)

    def refuse(self, text: str, edit: QLineEdit, *, retype: QLineEdit | None = None) -> None:
        """Say what is wrong and put the cursor where it is; `retype` is cleared (a repeated
        password that no longer matches anything)."""
        self.show_error(text)
        if retype is not None:
            retype.clear()
        edit.setFocus()
        edit.selectAll()

    def submit(self) -> None:
        raise NotImplementedError

    def run(self, fn: Callable[[], Any], on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run fn off the GUI thread with the form disabled; its result is the session."""
        if self.runner.busy:
            return
        self.show_error("")
        self._set_busy(True)

        def ok(session) -> None:
            self._set_busy(False)
            self.session = session
            self.accept()

        def failed(exc: BaseException) -> None:
            self._set_busy(False)
            self.show_error(auth_error_text(exc, self.clock))
            if on_error:
                on_error(exc)

        self.runner.submit(fn, ok, failed)

    def _set_busy(self, busy: bool) -> None:
        for edit in self.fields():
            edit.setReadOnly(busy)  # read-only, not disabled: the cursor stays where it was
        self.ok_button.setEnabled(not busy)
        self.ok_button.setText(tr("请稍候……") if busy else self.ok_text())

    def reject(self) -> None:
        if self.runner.busy:
            return  # a hash in flight finishes first; Cancel works a moment later
        super().reject()

    def done(self, result: int) -> None:
        self.runner.shutdown()
        super().done(result)


class FirstStartDialog(_AuthDialog):
    """首次启动: the PC has no users; the first account is an administrator."""

    def __init__(self, store, **kw):
        super().__init__(tr("首次启动"), tr("首次启动：请创建管理员账号"), **kw)
        self.store = store
        self.login_edit = QLineEdit(objectName="login")
        self.login_edit.setMaxLength(32)
        self.name_edit = QLineEdit(objectName="fullName")
        self.name_edit.setMaxLength(32)
        self.password_edit = _password_edit("password")
        self.again_edit = _password_edit("passwordAgain")
        self.password_edit.setPlaceholderText(tr("至少 {n} 位", n=MIN_PASSWORD))
        self.form.addRow(tr("用户名"), self.login_edit)
        self.form.addRow(tr("姓名"), self.name_edit)
        self.form.addRow(tr("密码"), self.password_edit)
        self.form.addRow(tr("再次输入密码"), self.again_edit)
        self.login_edit.setFocus()

    def ok_text(self) -> str:
        return tr("创建并登录")

    def submit(self) -> None:
        login, name = self.login_edit.text().strip(), self.name_edit.text().strip()
        password, again = self.password_edit.text(), self.again_edit.text()
        if not login:
            return self.refuse(tr("请输入用户名"), self.login_edit)
        if not name:
            return self.refuse(tr("请输入姓名"), self.name_edit)
        problem = password_problem(password, again)
        if problem:
            return self.refuse(problem, self.password_edit, retype=self.again_edit)
        store = self.store
        self.run(lambda: store.create_first_admin(login, name, password))


class LoginDialog(_AuthDialog):
    """登录: 用户名, 密码, Enter."""

    def __init__(self, store, *, training: bool = False, **kw):
        heading = tr("请登录") if not training else tr("培训模式（不产生真实费用）— 请登录")
        super().__init__(tr("登录"), heading, **kw)
        self.store = store
        self.login_edit = QLineEdit(objectName="login")
        self.login_edit.setMaxLength(32)
        self.password_edit = _password_edit("password")
        self.form.addRow(tr("用户名"), self.login_edit)
        self.form.addRow(tr("密码"), self.password_edit)
        self.password = ""  # kept only until a forced password change has used it
        self.login_edit.setFocus()

    def ok_text(self) -> str:
        return tr("登录")

    def submit(self) -> None:
        login, password = self.login_edit.text().strip(), self.password_edit.text()
        if not login:
            return self.refuse(tr("请输入用户名"), self.login_edit)
        if not password:
            return self.refuse(tr("请输入密码"), self.password_edit)
        store = self.store
        self.password = password

        def failed(_exc: BaseException) -> None:
            self.password = ""
            self.password_edit.clear()
            self.password_edit.setFocus()

        self.run(lambda: store.login(login, password), failed)


class ChangePasswordDialog(_AuthDialog):
    """The administrator set a temporary password: the user chooses their own before working."""

    def __init__(self, store, session, old_password: str, **kw):
        super().__init__(tr("修改密码"), tr("首次登录请设置新密码"), **kw)
        self.store, self._session, self._old = store, session, old_password
        self.password_edit = _password_edit("newPassword")
        self.again_edit = _password_edit("newPasswordAgain")
        self.password_edit.setPlaceholderText(tr("至少 {n} 位", n=MIN_PASSWORD))
        self.form.addRow(tr("新密码"), self.password_edit)
        self.form.addRow(tr("再次输入新密码"), self.again_edit)
        self.password_edit.setFocus()

    def submit(self) -> None:
        password, again = self.password_edit.text(), self.again_edit.text()
        problem = password_problem(password, again)
        if problem is None and password == self._old:
            problem = tr("新密码不能与原密码相同")
        if problem:
            return self.refuse(problem, self.password_edit, retype=self.again_edit)
        store, session, old = self.store, self._session, self._old
        self.run(lambda: store.change_password(session, old, password))


def exec_dialog(dialog: QDialog) -> bool:
    return dialog.exec() == QDialog.DialogCode.Accepted


def sign_in(store, settings, *, clock: Callable[[], datetime] = datetime.now,
            run: Callable[[QDialog], bool] = exec_dialog):
    """The session to open the counter with, or None when the user cancelled (exit cleanly)."""
    if not store.has_users():
        first = FirstStartDialog(store, clock=clock)
        if not run(first):
            return None
        return first.session
    login = LoginDialog(store, training=settings.training, clock=clock)
    if not run(login):
        return None
    session, old = login.session, login.password
    login.password = ""
    if getattr(session, "must_change_password", False):
        change = ChangePasswordDialog(store, session, old, clock=clock)
        if not run(change):
            return None
        session = change.session
    return session

