"""The window's questions to the worker: confirm a settlement, type a text, yes/no, a reason.

`Prompts` is a mixin of `MainWindow`. These are only the dialog defaults: the window calls them
through replaceable attributes (`confirm_settle`, `ask_text`, `confirm`, `ask_override_reason`)
that tests and kiosks swap for their own.
"""
from __future__ import annotations

from PySide6.QtWidgets import QInputDialog, QMessageBox

from settlement.money import yuan

from .i18n import tr


class Prompts:
    """The default modal dialogs behind the window's replaceable questions."""

    def _ask_confirm_settle(self, split) -> bool:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(tr("确认结算"))
        box.setText(tr("确认结算？\n\n医疗费总额 {total} 元\n现金支付 {cash} 元",
                       total=yuan(split.medfee_sumamt), cash=yuan(split.psn_cash_pay)))
        yes = box.addButton(tr("确认结算"), QMessageBox.ButtonRole.AcceptRole)
        box.addButton(tr("取消"), QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(yes)
        box.exec()
        return box.clickedButton() is yes

    def _ask_text(self, title: str, prompt: str) -> str | None:
        text, ok = QInputDialog.getText(self, title, prompt)
        return text if ok else None

    def _ask_yes_no(self, title: str, text: str) -> bool:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(title)
        box.setText(text)
        yes = box.addButton(tr("确定"), QMessageBox.ButtonRole.AcceptRole)
        box.addButton(tr("取消"), QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(yes)
        box.exec()
        return box.clickedButton() is yes

    def _ask_override_reason(self, verdict) -> str | None:
        text, ok = QInputDialog.getText(self, tr("继续的理由"),
                                        tr("{msg}\n\n如确需继续，请填写理由：", msg=verdict.message))
        return text.strip() if ok and text.strip() else None
