"""The window: a thin Qt layer over studio.core (PySide6 + pyqtgraph)."""
