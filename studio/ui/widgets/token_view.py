"""One example as the model will see it: the chat template's text, with the tokens the loss is on
(the trained tokens, tool calls included) highlighted, and what the sequence length cuts off struck
through. The text is escaped: a template's markup (<tool_call>, <|im_start|>) shows as written. When
a long prompt (a tool schema, a system message) pushes the first trained text below the view, the view
opens scrolled to it."""

from __future__ import annotations

import html

from PySide6.QtCore import QTimer
from PySide6.QtGui import QPalette, QTextCursor
from PySide6.QtWidgets import QTextBrowser

TRAINED_LIGHT = "#cfe8d5"
TRAINED_DARK = "#1f5130"
FIRST_TRAINED = "first-trained"  # the anchor before the first trained text


def example_html(example: dict, dark: bool = False) -> str:
    trained_bg = TRAINED_DARK if dark else TRAINED_LIGHT
    parts = []
    anchor = f'<a name="{FIRST_TRAINED}"></a>'
    for seg in example.get("segments", []):
        text = html.escape(seg["text"]).replace("\n", "↵<br>")
        if seg.get("note"):  # stands for characters a long example leaves out
            parts.append(f'<span style="color:#888; font-style: italic;">{text}</span>')
        elif seg.get("cut"):
            parts.append(f'<span style="color:#888; text-decoration: line-through;" title="cut by the sequence length">{text}</span>')
        elif seg.get("trained"):
            parts.append(anchor)
            anchor = ""
            parts.append(f'<span style="background-color:{trained_bg};" title="trained: the loss is on these tokens">{text}</span>')
        else:
            parts.append(f"<span>{text}</span>")
    where = f"{example['file']}:{example['line']}" if example.get("file") else f"line {example.get('line')}"
    cut = ", cut by the sequence length" if example.get("truncated") else ""
    about = "about " if example.get("tokens_estimated") else ""
    head = (f'<p style="margin-bottom:6px"><b>Row at {html.escape(str(where))}</b> — {about}{example.get("tokens"):,} tokens, '
            f'{example.get("trained_tokens"):,} trained{cut}</p>')
    return head + '<p style="font-family: monospace; white-space: pre-wrap;">' + "".join(parts) + "</p>"


class ExampleView(QTextBrowser):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setToolTip("How this row reaches the model, with its chat template. Highlighted text is trained "
                        "(the loss is computed on it); the rest is context. Struck-through text is cut off.")
        self.example: dict | None = None
        self._reveal_pending = False

    def set_example(self, example: dict | None) -> None:
        self.example = example
        self._reveal_pending = False
        if example is None:
            self.setHtml("")
            return
        dark = self.palette().color(QPalette.ColorRole.Base).lightness() < 128
        self.setHtml(example_html(example, dark))
        self._reveal_pending = True
        if self.isVisible():
            QTimer.singleShot(0, self._reveal_trained)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._reveal_pending:
            QTimer.singleShot(0, self._reveal_trained)  # once laid out at its size

    def _reveal_trained(self) -> None:
        """Scroll the first trained text into view, with a third of the view of what leads to it above;
        from the top (the row's heading) when it is in view there already."""
        if not self._reveal_pending or not self.isVisible():
            return
        self._reveal_pending = False
        bar = self.verticalScrollBar()
        bar.setValue(0)
        top, height = self._first_trained_top(), self.viewport().height()
        if top is not None and top + 3 * self.fontMetrics().lineSpacing() > height:
            bar.setValue(max(0, top - height // 3))

    def _first_trained_top(self) -> int | None:
        """Where the first trained text starts, in pixels from the top of the text (None: nothing trained)."""
        block = self.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if FIRST_TRAINED in fragment.charFormat().anchorNames():
                    cursor = QTextCursor(self.document())
                    cursor.setPosition(fragment.position())
                    return self.cursorRect(cursor).top() + self.verticalScrollBar().value()
                it += 1
            block = block.next()
        return None

    def trained_text(self) -> str:
        if not self.example:
            return ""
        return "".join(s["text"] for s in self.example["segments"] if s.get("trained") and not s.get("cut"))
