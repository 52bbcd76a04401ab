"""One example as the model will see it: the chat template's text, with the tokens the loss is on
(the trained tokens) highlighted, and what the sequence length cuts off struck through."""

from __future__ import annotations

import html

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QTextBrowser

TRAINED_LIGHT = "#cfe8d5"
TRAINED_DARK = "#1f5130"


def example_html(example: dict, dark: bool = False) -> str:
    trained_bg = TRAINED_DARK if dark else TRAINED_LIGHT
    parts = []
    for seg in example.get("segments", []):
        text = html.escape(seg["text"]).replace("\n", "↵<br>")
        if seg.get("cut"):
            parts.append(f'<span style="color:#888; text-decoration: line-through;" title="cut by the sequence length">{text}</span>')
        elif seg.get("trained"):
            parts.append(f'<span style="background-color:{trained_bg};" title="trained: the loss is on these tokens">{text}</span>')
        else:
            parts.append(f"<span>{text}</span>")
    where = f"{example['file']}:{example['line']}" if example.get("file") else f"line {example.get('line')}"
    cut = ", cut by the sequence length" if example.get("truncated") else ""
    head = (f'<p style="margin-bottom:6px"><b>Row at {html.escape(str(where))}</b> — {example.get("tokens")} tokens, '
            f'{example.get("trained_tokens")} trained{cut}</p>')
    return head + '<p style="font-family: monospace; white-space: pre-wrap;">' + "".join(parts) + "</p>"


class ExampleView(QTextBrowser):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setToolTip("How this row reaches the model, with its chat template. Highlighted text is trained "
                        "(the loss is computed on it); the rest is context. Struck-through text is cut off.")
        self.example: dict | None = None

    def set_example(self, example: dict | None) -> None:
        self.example = example
        if example is None:
            self.setHtml("")
            return
        dark = self.palette().color(QPalette.ColorRole.Base).lightness() < 128
        self.setHtml(example_html(example, dark))

    def trained_text(self) -> str:
        if not self.example:
            return ""
        return "".join(s["text"] for s in self.example["segments"] if s.get("trained") and not s.get("cut"))
