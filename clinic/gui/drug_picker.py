"""Drug entry: type pinyin initials, see matches at once, Enter adds the highlighted drug."""
from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtWidgets import (QGridLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QSpinBox, QWidget)

from settlement.money import yuan

from .i18n import tr

log = logging.getLogger(__name__)

LEVELS = {"01": "甲", "02": "乙", "03": "丙"}
# The ordinary-prescription limit; "auto" (0) would take the whole pack's days, often over it.
DEFAULT_DAYS = 7
MAX_MATCHES = 12


def drug_label(drug: Any) -> str:
    level = LEVELS.get(getattr(drug, "chrgitm_lv", ""), "")
    return (f"{drug.name}  {drug.strength}  {yuan(drug.price_fen)}{tr('元')}/{drug.unit}"
            + (f"  [{level}]" if level else ""))


class DrugPicker(QWidget):
    """Emits `chosen(drug, qty, days_or_None)`; days 0 shows 自动: the pack's standard supply."""

    chosen = Signal(object, int, object)

    def __init__(self, search: Callable[[str, int], list], parent: QWidget | None = None):
        super().__init__(parent)
        self._search = search
        self.search_box = QLineEdit(objectName="drugSearch")
        self.search_box.setPlaceholderText(tr("例如 xbdp 查 硝苯地平"))
        self.search_box.setClearButtonEnabled(True)
        # A drop-down over the table while typing, so the page keeps its room for the verdicts.
        self.matches = QListWidget(self, objectName="drugMatches")
        self.matches.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows in the search box drive it
        self.matches.setStyleSheet("QListWidget#drugMatches { border: 2px solid #1565c0;"
                                   " background: white; }")
        self.matches.hide()
        self.qty = QSpinBox(objectName="qty")
        self.qty.setRange(1, 999)
        self.days = QSpinBox(objectName="days")
        self.days.setRange(0, 84)
        self.days.setSpecialValueText(tr("自动"))
        self.days.setValue(DEFAULT_DAYS)
        self.add_button = QPushButton(tr("添加 (Enter)"), objectName="addDrug")
        self.hint = QLabel("", objectName="drugHint")
        self.hint.hide()  # only "no match" is ever said here

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        search_label = QLabel(tr("药品（拼音首字母）"))
        search_label.setBuddy(self.search_box)
        grid.addWidget(search_label, 0, 0)
        grid.addWidget(QLabel(tr("数量")), 0, 1)
        grid.addWidget(QLabel(tr("天数")), 0, 2)
        grid.addWidget(self.search_box, 1, 0)
        grid.addWidget(self.qty, 1, 1)
        grid.addWidget(self.days, 1, 2)
        grid.addWidget(self.add_button, 1, 3)
        grid.addWidget(self.hint, 2, 0, 1, 4)
        grid.setColumnStretch(0, 1)

        self.search_box.textChanged.connect(self._refresh)
        self.search_box.returnPressed.connect(self._add)
        self.add_button.clicked.connect(self._add)
        self.matches.itemDoubleClicked.connect(lambda _item: self._add())
        for w in (self.search_box, self.qty, self.days):
            w.installEventFilter(self)
        QWidget.setTabOrder(self.search_box, self.qty)
        QWidget.setTabOrder(self.qty, self.days)
        QWidget.setTabOrder(self.days, self.add_button)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.search_box and event.type() == QEvent.Type.FocusOut:
            self.matches.hide()  # the selection stays: Tab to qty, Enter still adds it
        elif obj is self.search_box and event.type() == QEvent.Type.FocusIn:
            self._show_matches()
        if event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if obj is self.search_box and key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                row = self.matches.currentRow() + (1 if key == Qt.Key.Key_Down else -1)
                if 0 <= row < self.matches.count():
                    self.matches.setCurrentRow(row)
                return True
            if obj in (self.qty, self.days) and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                obj.interpretText()
                self._add()
                return True
        return super().eventFilter(obj, event)

    def _refresh(self, text: str) -> None:
        self.matches.clear()
        text = text.strip()
        if not text:
            self.hint.hide()
            self.matches.hide()
            return
        try:
            hits = self._search(text, MAX_MATCHES)
        except Exception:  # a search bug must not take the counter down
            log.exception("drug search failed")
            hits = []
        for drug in hits:
            item = QListWidgetItem(drug_label(drug))
            item.setData(Qt.ItemDataRole.UserRole, drug)
            self.matches.addItem(item)
        if hits:
            self.matches.setCurrentRow(0)
        self.hint.setText(tr("没有找到匹配的药品"))
        self.hint.setVisible(not hits)
        self._show_matches()

    def _show_matches(self) -> None:
        if not (self.matches.count() and self.search_box.text().strip()):
            self.matches.hide()
            return
        top = self.window()
        if self.matches.parent() is not top:
            self.matches.setParent(top)  # above the table, not clipped by this widget
        left = self.search_box.mapTo(top, QPoint(0, self.search_box.height() + 2))
        right = self.add_button.mapTo(top, QPoint(self.add_button.width(), 0))
        rows = min(self.matches.count(), MAX_MATCHES)
        height = rows * max(self.matches.sizeHintForRow(0), 1) + 2 * self.matches.frameWidth() + 4
        self.matches.setGeometry(QRect(left, QSize(right.x() - left.x(), min(height, 320))))
        self.matches.show()
        self.matches.raise_()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.matches.isVisible():
            self._show_matches()

    def selected_drug(self) -> Any | None:
        item = self.matches.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _add(self) -> None:
        drug = self.selected_drug()
        if drug is None:
            self.search_box.setFocus()
            return
        days = self.days.value() or None
        self.chosen.emit(drug, self.qty.value(), days)
        self.reset()
        self.matches.hide()

    def reset(self) -> None:
        self.search_box.clear()
        self.qty.setValue(1)
        self.days.setValue(DEFAULT_DAYS)
        self.search_box.setFocus()
