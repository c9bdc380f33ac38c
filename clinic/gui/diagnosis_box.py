"""Diagnosis entry: the common list in a drop-down, or type initials (gxy), a name or a code."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import QComboBox, QCompleter, QWidget

from .i18n import tr

MAX_MATCHES = 12


def diagnosis_label(d: Any) -> str:
    return f"{d.code}  {d.name}"


class DiagnosisBox(QComboBox):
    """`code()` is the ICD-10 code on screen, or None while the text names no listed diagnosis."""

    codeChanged = Signal(object)

    def __init__(self, diagnoses, parent: QWidget | None = None, **qt_properties):
        super().__init__(parent, **qt_properties)
        self._list = diagnoses
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setMaxVisibleItems(15)
        for d in diagnoses:
            self.addItem(diagnosis_label(d), d.code)
        self.lineEdit().setPlaceholderText(tr("拼音首字母或编码，如 gxy"))
        # The combo's own completer only matches the start of "I10  原发性高血压"; pinyin needs ours.
        self._model = QStringListModel(self)
        completer = QCompleter(self._model, self)
        completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.activated.connect(self._pick)
        self.setCompleter(completer)
        self.lineEdit().textEdited.connect(self._search)
        self.lineEdit().returnPressed.connect(self._take_first)
        self._last: str | None = self.code()
        self.currentIndexChanged.connect(lambda _i: self._emit_if_changed())
        self.lineEdit().editingFinished.connect(self._emit_if_changed)

    def code(self) -> str | None:
        text = self.currentText().strip()
        found = self._list.by_code(text.split()[0]) if text else None
        return found.code if found else None

    def set_code(self, code: str) -> None:
        index = self.findData(code)
        if index >= 0:
            self.setCurrentIndex(index)
            self.setEditText(self.itemText(index))

    def _search(self, text: str) -> None:
        hits = self._list.search(text.strip(), MAX_MATCHES) if text.strip() else []
        self._model.setStringList([diagnosis_label(d) for d in hits])
        if hits:
            self.completer().complete()

    def _pick(self, label: str) -> None:
        self.set_code(label.split()[0])
        self._emit_if_changed()

    def _take_first(self) -> None:
        if self.code() is None:
            hits = self._list.search(self.currentText().strip(), 1)
            if hits:
                self.set_code(hits[0].code)
        self._emit_if_changed()

    def _emit_if_changed(self) -> None:
        code = self.code()
        if code != self._last:
            self._last = code
            self.codeChanged.emit(code)
