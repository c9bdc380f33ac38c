"""Locking the desk: covering the counter page with the lock screen and unlocking it.

`LockActions` is a mixin of `MainWindow`. The idle detector and the lock screen widget
themselves are in `idle_lock`; this is what the window does when the desk locks and when the
signed-in user's password is checked (off the GUI thread, on the window's own lock runner).
"""
from __future__ import annotations

import logging

from PySide6.QtWidgets import QApplication, QDialog

from .i18n import tr
from .login import auth_error_text

log = logging.getLogger(__name__)


class LockActions:
    """lock / try_unlock / unlock for `MainWindow`, which supplies the pages and runners."""

    def lock(self) -> None:
        """Cover the counter: the page with the visit is not shown until the password is given."""
        if self.locked or self.store is None or self.session is None:
            return
        self.locked = True
        for dialog in self.findChildren(QDialog):  # a question left open is answered 取消
            if dialog.isVisible():
                dialog.reject()
        popup = QApplication.activePopupWidget()
        if popup is not None:
            popup.close()
        self.picker.matches.hide()  # lives on the window, above the page
        for shortcut in self._shortcut_list:
            shortcut.setEnabled(False)
        self.lock_screen.clear()
        self.pages.setCurrentWidget(self.lock_screen)
        self._update_lock_note()
        self.lock_screen.password.setFocus()
        log.info("desk locked after %.0f idle seconds", self.idle.idle_seconds())

    def _update_lock_note(self) -> None:
        if self.locked:
            self.lock_screen.note.setText(tr("正在处理的业务会继续完成，解锁后可查看结果")
                                          if self.runner.busy else "")
            if not self.lock_screen.isAncestorOf(QApplication.focusWidget()):
                self.lock_screen.password.setFocus()  # a finished call moved it: put it back

    def try_unlock(self, password: str) -> None:
        if not self.locked or self.lock_runner.busy:
            return
        if not password:
            self.lock_screen.show_error(tr("请输入密码"))
            return
        store, session = self.store, self.session
        self.lock_screen.set_checking(True)
        self.lock_screen.show_error("")

        def checked(good: bool) -> None:
            self.lock_screen.set_checking(False)
            if good:
                self.unlock()
                return
            self.lock_screen.show_error(tr("密码错误，请重新输入"))
            self.lock_screen.password.clear()
            self.lock_screen.password.setFocus()

        def failed(exc: BaseException) -> None:  # locked out after too many tries, or worse
            self.lock_screen.set_checking(False)
            self.lock_screen.show_error(auth_error_text(exc))
            self.lock_screen.password.clear()
            self.lock_screen.password.setFocus()

        self.lock_runner.submit(lambda: store.verify_password(session, password), checked, failed)

    def unlock(self) -> None:
        self.locked = False
        self.lock_screen.clear()
        self.pages.setCurrentWidget(self.counter_page)
        for shortcut in self._shortcut_list:
            shortcut.setEnabled(True)
        self.idle.reset()
        self._update_actions()
        log.info("desk unlocked")
