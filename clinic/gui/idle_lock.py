"""The desk locks itself when nobody has touched it for a while.

`IdleWatch` sees every key press and mouse click in the application (an application-wide event
filter) and, on each `check()`, says the desk should lock once `minutes` have passed without
one. The clock is injected (monotonic seconds, or datetimes) so a test moves time and calls
`check()` itself; in production a QTimer calls it every few seconds.

`LockScreen` is the page the window shows instead of the counter: who is signed in, a password
field, 解锁. It knows nothing of passwords; the window checks them off the GUI thread.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (QApplication, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QVBoxLayout, QWidget)

from .i18n import tr

CHECK_EVERY_MS = 5000
ACTIVITY = frozenset({QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress,
                      QEvent.Type.MouseButtonDblClick})


def _seconds(value: float | datetime) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


class IdleWatch(QObject):
    """Emits `idle` once when `minutes` pass without a key press or click; `reset()` re-arms it."""

    idle = Signal()

    def __init__(self, minutes: float, *, clock: Callable[[], float | datetime] = time.monotonic,
                 check_every_ms: int = CHECK_EVERY_MS, parent: QObject | None = None):
        super().__init__(parent)
        self.limit = max(0.0, float(minutes)) * 60.0  # 0: never lock
        self.clock = clock
        self.armed = True
        self._last = self._now()
        self._app = QApplication.instance()
        self._app.installEventFilter(self)
        self.timer = QTimer(self)
        self.timer.setInterval(check_every_ms)
        self.timer.timeout.connect(self.check)
        if self.limit > 0:
            self.timer.start()

    def _now(self) -> float:
        return _seconds(self.clock())

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if self.armed and event.type() in ACTIVITY:
            self._last = self._now()
        return False  # watch only; the event goes on as before

    def idle_seconds(self) -> float:
        return self._now() - self._last

    def check(self) -> bool:
        """True (and `idle` emitted) when the desk has just become idle."""
        if self.armed and self.enabled and self.idle_seconds() >= self.limit:
            self.armed = False
            self.idle.emit()
            return True
        return False

    def reset(self) -> None:
        """After unlocking: activity counts again, from now."""
        self._last = self._now()
        self.armed = True

    def stop(self) -> None:
        self.timer.stop()
        if self._app is not None:
            self._app.removeEventFilter(self)
            self._app = None


class LockScreen(QWidget):
    """What covers the counter while locked. Emits `unlock(password)` and `quit()`."""

    unlock = Signal(str)
    quit = Signal()

    def __init__(self, who: str, parent: QWidget | None = None):
        super().__init__(parent, objectName="lockScreen")
        self.setAutoFillBackground(True)
        self.setStyleSheet("QWidget#lockScreen { background: #eceff1; }"
                           "QLabel#lockTitle { font-size: 28px; font-weight: bold; }"
                           "QLabel#lockWho { font-size: 18px; }"
                           "QLabel#lockError { color: #b71c1c; font-size: 17px; }"
                           "QLabel#lockNote { color: #0d47a1; font-size: 15px; }")
        col = QVBoxLayout(self)
        col.addStretch(2)
        title = QLabel(tr("已锁定"), objectName="lockTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        col.addWidget(title)
        self.who = QLabel(tr("{who} 已登录。长时间无人操作，屏幕已锁定，病人信息已隐藏。", who=who),
                          objectName="lockWho")
        self.who.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.who.setWordWrap(True)
        col.addWidget(self.who)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(QLabel(tr("密码")))
        self.password = QLineEdit(objectName="unlockPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setMaxLength(128)
        self.password.setMinimumWidth(260)
        self.password.returnPressed.connect(self._submit)
        row.addWidget(self.password)
        self.unlock_button = QPushButton(tr("解锁 (Enter)"), objectName="unlockButton")
        self.unlock_button.setAutoDefault(True)
        self.unlock_button.clicked.connect(self._submit)
        row.addWidget(self.unlock_button)
        row.addStretch(1)
        col.addLayout(row)
        self.error = QLabel("", objectName="lockError")
        self.error.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.error.setWordWrap(True)
        col.addWidget(self.error)
        self.note = QLabel("", objectName="lockNote")  # e.g. a settlement still running
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setWordWrap(True)
        col.addWidget(self.note)
        quit_row = QHBoxLayout()
        quit_row.addStretch(1)
        self.quit_button = QPushButton(tr("退出程序"), objectName="lockQuit")
        self.quit_button.clicked.connect(self.quit)
        quit_row.addWidget(self.quit_button)
        quit_row.addStretch(1)
        col.addLayout(quit_row)
        col.addStretch(3)

    def _submit(self) -> None:
        if self.password.isEnabled():
            self.unlock.emit(self.password.text())

    def set_checking(self, checking: bool) -> None:
        self.password.setEnabled(not checking)
        self.unlock_button.setEnabled(not checking)
        self.unlock_button.setText(tr("请稍候……") if checking else tr("解锁 (Enter)"))

    def show_error(self, text: str) -> None:
        self.error.setText(text)

    def clear(self) -> None:
        self.password.clear()
        self.error.clear()
        self.set_checking(False)
