"""The counter's other work (其他业务): self-pay, reprint, revoke, reverse, day close.

`OtherWorkActions` is a mixin of `MainWindow`: it builds the 其他业务 box and holds the handlers
its buttons and F6/F7/F8/F10/F11 call. Like every handler on the window, each asks `allowed`
again before acting, refuses while the worker is busy, and runs anything that reaches the
network or the database on the window's TaskRunner.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QPushButton

from clinic.errors import CounterError
from clinic import visit_state as vs
from clinic.roles import require
from settlement.money import AmountError, to_fen, yuan

from .i18n import tr

# The counter's other work: action -> (button text, object name, shortcut).
EXTRA_ACTIONS = (("self_pay", "自费收费 (F6)", "selfPay", Qt.Key.Key_F6),
                 ("reprint", "补打收据 (F7)", "reprint", Qt.Key.Key_F7),
                 ("revoke", "撤销结算 (F8)", "revoke", Qt.Key.Key_F8),
                 ("reverse", "冲正 (F10)", "reverse", Qt.Key.Key_F10),
                 ("day_close", "日结 (F11)", "dayClose", Qt.Key.Key_F11))


class OtherWorkActions:
    """The 其他业务 box and its handlers; mixed into `MainWindow`, which supplies the state."""

    def _build_more(self) -> QGroupBox:
        """The counter's other work, below the diagnosis where the column has room."""
        more = QGroupBox(tr("其他业务"))
        grid = QGridLayout(more)
        self.action_buttons: dict[str, QPushButton] = {}
        handlers = {"self_pay": self.self_pay, "reprint": self.reprint, "revoke": self.revoke,
                    "reverse": self.reverse, "day_close": self.day_close}
        for i, (action, text, name, _key) in enumerate(EXTRA_ACTIONS):
            button = QPushButton(tr(text), objectName=name)
            button.clicked.connect(handlers[action])
            self.action_buttons[action] = button
            grid.addWidget(button, i // 2, i % 2)
        return more

    # ---- the counter's other work ------------------------------------------------------

    def _refuse_while_busy(self) -> bool:
        if self.runner.busy:
            self.show_message(tr("正在处理，请稍候"), "info")
            return True
        return False

    def _chosen_visit(self, title: str) -> tuple[str, str] | None:
        """The insured settlement on screen, else the one whose 结算号 the worker types in."""
        s = self._settlement
        if s is not None and s.msgid:  # a self-pay receipt has no insurer message
            return ("visit", s.visit_id)
        text = self.ask_text(title, tr("请输入结算号（收据上的“结算号”）："))
        return ("setl_id", text.strip()) if text and text.strip() else None

    @staticmethod
    def _visit_id_of(counter, target: tuple[str, str]) -> str:
        from sqlalchemy import select

        from clinic.models import Visit
        kind, value = target
        if kind == "visit":
            return value
        with counter.engine.connect() as conn:
            found = conn.execute(select(Visit.id).where(Visit.setl_id == value)).scalar()
        if found is None:
            raise CounterError(f"没有找到结算号为 {value} 的结算，请核对收据上的结算号",
                               "no visit with that setl_id")
        return found

    def self_pay(self) -> None:
        """The network is down: the patient pays the whole amount in cash, clearly marked 自费."""
        if not self.allowed("self_pay") or self._refuse_while_busy():
            return
        if self._settlement is not None or self._outcome_unknown:
            return
        if not self._items:
            self.show_message(tr("请先添加药品"), "error")
            return
        total = sum(it.amount_fen for it in self._items)
        if not self.confirm(tr("自费收费"), tr("按自费收取现金 {cash} 元？\n医保基金和个人账户都不支付。",
                                           cash=yuan(total))):
            self.show_message(tr("已取消，未收费"), "info")
            return
        counter, items, card = self.counter, tuple(self._items), self._card
        self._clear_presettlement()  # an insured visit pre-settled for these drugs is withdrawn

        def work():
            from clinic.self_pay import take_self_pay
            require(counter.operator, "self_pay")
            return take_self_pay(counter, items, card)

        self.show_message(tr("正在收费……"), "info")
        self.runner.submit(work, self._on_self_paid, self.show_error)

    def _on_self_paid(self, settlement) -> None:
        self._on_settled(settlement)
        self.show_message(tr("自费收费完成（医保未支付），请打印收据交给病人"), "ok")

    def reprint(self) -> None:
        if not self.allowed("reprint") or self._refuse_while_busy():
            return
        target = self._chosen_visit(tr("补打收据"))
        if target is None:
            return
        counter, find = self.counter, self._visit_id_of

        def work():
            require(counter.operator, "reprint")
            return counter.reprint_receipt(find(counter, target))

        def done(path: str) -> None:
            self.show_message(tr("已补打收据：{path}", path=path), "ok")

        self.show_message(tr("正在补打收据……"), "info")
        self.runner.submit(work, done, self.show_error)

    def revoke(self) -> None:
        """2208: a same-day settlement made in error is revoked, with a reason, and a slip printed."""
        if not self.allowed("revoke") or self._refuse_while_busy():
            return
        target = self._chosen_visit(tr("撤销结算"))
        if target is None:
            return
        reason = self.ask_text(tr("撤销结算"), tr("撤销的原因（必填）："))
        if not reason or not reason.strip():
            self.show_message(tr("撤销结算必须填写原因，未撤销"), "info")
            return
        counter, find = self.counter, self._visit_id_of

        def work():
            from clinic.revocation import revoke
            visit_id = find(counter, target)
            _info, slip = revoke(counter, visit_id, reason)  # asks `require` itself too
            return visit_id, slip

        def done(result) -> None:
            visit_id, slip = result
            if self._settlement is not None and self._settlement.visit_id == visit_id:
                self.reset_visit()
            self.show_message(tr("已撤销结算，请把退款收据交给病人：{path}", path=slip), "ok")

        self.show_message(tr("正在撤销结算……"), "info")
        self.runner.submit(work, done, self.show_error)

    def reverse(self) -> None:
        """2601: a settlement whose outcome stays unknown is cancelled at the insurer."""
        if not self.allowed("reverse") or self._refuse_while_busy():
            return
        on_screen = self._visit_id if self._outcome_unknown else None
        if not self.confirm(tr("冲正"), tr("冲正结果未知的结算？\n冲正后这笔结算作废，医保不收取费用。")):
            return
        counter = self.counter

        def work():
            from clinic.revocation import reverse
            ids = [on_screen] if on_screen else [
                v for v in counter.unresolved_visits()
                if counter.visit_row(v).state in (vs.UNKNOWN, vs.REVERSING)]
            if not ids:
                raise CounterError("没有结果未知的结算需要冲正", "nothing to reverse")
            for visit_id in ids:
                reverse(counter, visit_id)  # asks `require` itself too
            return len(ids)

        def done(n: int) -> None:
            if on_screen is not None and self._visit_id == on_screen:
                self._visit_id = None  # reversed, not to be withdrawn again
                self.reset_visit()
            self.show_message(tr("已冲正 {n} 笔结果未知的结算，医保未收取费用", n=n), "ok")

        self.show_message(tr("正在冲正……"), "info")
        self.runner.submit(work, done, self.show_error)

    def day_close(self) -> None:
        """End of day: reconcile with the insurer, compare the counted cash, sign out."""
        if not self.allowed("day_close") or self._refuse_while_busy():
            return
        cash = self.ask_text(tr("日结"), tr("日结会与医保中心对账并签退。\n请输入清点的现金（元），不清点请留空："))
        if cash is None:
            return
        cash_fen = None
        if cash.strip():
            try:
                cash_fen = to_fen(cash.strip())
            except AmountError:
                self.show_message(tr("现金金额写法不对，例如 125.50"), "error")
                return
        counter = self.counter

        def work():
            from clinic.day_close import close_day
            return close_day(counter, counter.clock().date(), cash_fen)  # asks `require` too

        def done(report) -> None:
            if report.balanced:
                self.show_message(tr("日结完成，账目相符。应收现金 {cash} 元。已签退。",
                                     cash=yuan(report.cash_expected)), "ok")
            else:
                lines = [f"{d.message}：{d.action}" for d in report.differences]
                self.show_message(tr("日结完成，但有不符：") + "\n" + "\n".join(lines), "error")

        self.show_message(tr("正在日结……"), "info")
        self.runner.submit(work, done, self.show_error)
