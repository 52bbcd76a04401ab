"""The memory plan as one stacked horizontal bar against a line at the GPU's memory.

One colour per component (the same colour on every page and in the legend); hovering a segment
shows the component's `why` — the plan explains itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from studio.ui.units import gb

# Colour-blind-friendly (Tableau 10), fixed per component.
COLOURS = {
    "quantized_weights": "#4e79a7",
    "unquantized_weights": "#76b7b2",
    "gradients": "#9c755f",
    "lora_weights": "#f28e2b",
    "lora_gradients": "#ffbe7d",
    "optimizer_states": "#59a14f",
    "activations": "#edc948",
    "logits": "#e15759",
    "runtime": "#d4a6c8",
    "int8_inputs": "#9d7660",
    "reference_adapter": "#ff9da7",
    "fsdp_gathered": "#8cd17d",
    "gradient_buckets": "#b6992d",
    "cuda_overhead": "#bab0ac",
}
LABELS = {
    "quantized_weights": "Base weights (quantized)",
    "unquantized_weights": "Base weights (not quantized)",
    "gradients": "Gradients",
    "lora_weights": "Adapter",
    "lora_gradients": "Adapter gradients",
    "optimizer_states": "Optimizer",
    "activations": "Activations",
    "logits": "Logits (the loss)",
    "runtime": "Runtime buffers",
    "int8_inputs": "8-bit layers' inputs",
    "reference_adapter": "DPO's reference adapter",
    "fsdp_gathered": "Layers gathered (FSDP)",
    "gradient_buckets": "Gradient buckets (DDP)",
    "cuda_overhead": "Held by CUDA and PyTorch",
}


def colour_of(name: str) -> QColor:
    return QColor(COLOURS.get(name, "#b07aa1"))


def label_of(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


@dataclass(frozen=True)
class Segment:
    name: str
    bytes: int
    why: str
    rect: QRectF


class MemoryBar(QWidget):
    BAR_HEIGHT = 34
    MARGIN = 8

    def __init__(self, parent=None):
        super().__init__(parent)
        self.components: list[tuple[str, int, str]] = []
        self.gpu_bytes: int | None = None
        self.gpu_label = ""
        self._segments: list[Segment] = []
        self.setMouseTracking(True)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setToolTip("GPU memory of the run, component by component. Hover a colour to see what it is.")
        self.setAccessibleName("Memory plan bar")

    def set_plan(self, components: list[tuple[str, int, str]], gpu_bytes: int | None, gpu_label: str = "") -> None:
        self.components = [c for c in components if c[1] > 0]
        self.gpu_bytes = gpu_bytes
        self.gpu_label = gpu_label
        self.updateGeometry()
        self.update()

    # ---- geometry ----

    def _legend_rows(self, width: int) -> list[list[tuple[str, int]]]:
        fm = QFontMetrics(self.font())
        rows: list[list[tuple[str, int]]] = [[]]
        x = 0
        for name, size, _ in self.components:
            w = 16 + fm.horizontalAdvance(f"{label_of(name)} {gb(size)}") + 18
            if x + w > width and rows[-1]:
                rows.append([])
                x = 0
            rows[-1].append((name, size))
            x += w
        return rows

    ZOOM_BELOW = 0.3  # a plan under 30% of the GPU is also drawn enlarged, so its parts can be read

    def _zoomed(self) -> bool:
        total = sum(c[1] for c in self.components)
        return bool(self.gpu_bytes and total and total < self.ZOOM_BELOW * self.gpu_bytes)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        fm = QFontMetrics(self.font())
        legend = len(self._legend_rows(max(width, 300) - 2 * self.MARGIN)) * (fm.height() + 6)
        zoom = (fm.height() + 4 + self.BAR_HEIGHT + 8) if self._zoomed() else 0
        return self.MARGIN + fm.height() + 6 + self.BAR_HEIGHT + 12 + fm.height() + zoom + legend + self.MARGIN

    def sizeHint(self) -> QSize:
        return QSize(600, self.heightForWidth(max(self.width(), 600)))

    def minimumSizeHint(self) -> QSize:
        return QSize(300, self.heightForWidth(max(self.width(), 300)))

    def segment_at(self, x: float, y: float) -> Segment | None:
        for seg in self._segments:
            if seg.rect.contains(QPointF(x, y)):
                return seg
        return None

    def segments(self) -> list[Segment]:
        return list(self._segments)

    # ---- painting ----

    def _draw_segments(self, p: QPainter, left: float, top: float, width: float, scale_max: float) -> float:
        x = float(left)
        p.setPen(Qt.PenStyle.NoPen)
        for name, size, why in self.components:
            w = width * size / scale_max
            rect = QRectF(x, top, max(w, 1.0), self.BAR_HEIGHT)
            p.setBrush(colour_of(name))
            p.drawRect(rect)
            self._segments.append(Segment(name, size, why, rect))
            x += w
        return x

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        fm = QFontMetrics(self.font())
        m = self.MARGIN
        width = self.width() - 2 * m
        top = m + fm.height() + 6
        total = sum(c[1] for c in self.components)
        scale_max = max(total, self.gpu_bytes or 0) * 1.06 or 1
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(pal.color(QPalette.ColorRole.AlternateBase))
        p.drawRoundedRect(QRectF(m, top, width, self.BAR_HEIGHT), 4, 4)
        self._segments = []
        x = self._draw_segments(p, m, top, width, scale_max)
        # the total, above the bar's end
        p.setPen(text)
        if total:
            label = f"planned {gb(total)}"
            tx = min(max(m, x - fm.horizontalAdvance(label)), m + width - fm.horizontalAdvance(label))
            p.drawText(QPointF(tx, m + fm.ascent()), label)
        # the GPU line, labelled below the bar (the planned total is above it: they never collide)
        if self.gpu_bytes:
            gx = m + width * self.gpu_bytes / scale_max
            over = total > self.gpu_bytes
            pen = QPen(QColor("#d64541") if over else text, 2.5)
            pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.drawLine(QPointF(gx, top - 4), QPointF(gx, top + self.BAR_HEIGHT + 4))
            label = f"{self.gpu_label or 'GPU'}: {gb(self.gpu_bytes)}"
            lw = fm.horizontalAdvance(label)
            lx = gx - lw - 4 if gx - lw - 4 >= m else min(gx + 4, m + width - lw)
            p.setPen(text)
            p.drawText(QPointF(lx, top + self.BAR_HEIGHT + 6 + fm.ascent()), label)
        y = top + self.BAR_HEIGHT + 12 + fm.height()
        # a small plan on a big GPU: the same bar again, enlarged to the plan's own size
        if self._zoomed():
            p.setPen(text)
            p.drawText(QPointF(m, y + fm.ascent()), f"The plan enlarged ({100 * total / self.gpu_bytes:.1f}% of the GPU):")
            y += fm.height() + 4
            self._draw_segments(p, m, y, width, total)
            y += self.BAR_HEIGHT + 8
        # the legend
        for row in self._legend_rows(width):
            lx = float(m)
            for name, size in row:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(colour_of(name))
                p.drawRoundedRect(QRectF(lx, y + (fm.height() - 11) / 2, 11, 11), 2, 2)
                p.setPen(pal.color(QPalette.ColorRole.WindowText))
                text = f"{label_of(name)} {gb(size)}"
                p.drawText(QPointF(lx + 16, y + fm.ascent()), text)
                lx += 16 + fm.horizontalAdvance(text) + 18
            y += fm.height() + 6
        p.end()

    def event(self, event) -> bool:
        if event.type() == event.Type.ToolTip:
            seg = self.segment_at(event.pos().x(), event.pos().y())
            if seg is not None:
                share = 100 * seg.bytes / max(1, sum(c[1] for c in self.components))
                QToolTip.showText(event.globalPos(), f"<b>{label_of(seg.name)}: {gb(seg.bytes, 2)}</b> ({share:.0f}%)<br>{seg.why}",
                                  self)
            else:
                QToolTip.showText(event.globalPos(), self.toolTip(), self)
            return True
        return super().event(event)
