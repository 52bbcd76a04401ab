"""Export a finished run's final adapter, or a checkpoint it kept (`checkpoint=STEP`): the PEFT adapter
with a model card, a merged 16-bit model, GGUF files for llama.cpp / Ollama / LM Studio (each checked
in llama.cpp), and a Modelfile for Ollama.
`from studio.core.export import export_run` is all a caller needs.

    layout.py       what an export folder holds, by name
    exporting.py    export_run: checks, then the files built in a staging folder and swapped in whole
    contents.py     the files themselves: adapter or merged model, tokenizer, recipe, plot, Modelfile, card
    target.py       the target folder: the earlier export's files, the user's, what is in the way
    card.py         the model card (README.md)
    loss_plot.py    the loss plot (loss.svg), drawn without Qt or matplotlib
    ollama.py       the Ollama TEMPLATE translated from the chat template, and the Modelfile
    go_template.py  the subset of Go templates Ollama's TEMPLATEs use, rendered to check a translation
    to_gguf/        GGUF files: written with the gguf package, quantized and checked with llama.cpp

What the export reads of a run folder (`RunFacts`, `read_run`) is the runs package's.
"""

from studio.core.atomic import recover
from studio.core.export.card import model_card
from studio.core.export.contents import DEFAULT_SHARD_SIZE, DTYPES, expected_bytes, shard_size_bytes
from studio.core.export.exporting import ExportChoice, ExportResult, estimated_gguf_sizes, export_run
from studio.core.export.go_template import render_go_template
from studio.core.export.layout import CARD, MARKER, MODELFILE, PLOT
from studio.core.export.loss_plot import loss_svg
from studio.core.export.ollama import OLLAMA_ADAPTER_TYPES, OllamaTemplate, modelfile_text, ollama_template, wants_modelfile
from studio.core.export.target import FilesInTheWay, TargetFolder, check_target, is_export, survey

__all__ = [
    "CARD", "DEFAULT_SHARD_SIZE", "DTYPES", "MARKER", "MODELFILE", "OLLAMA_ADAPTER_TYPES", "PLOT", "ExportChoice", "ExportResult",
    "FilesInTheWay", "OllamaTemplate", "TargetFolder", "check_target", "estimated_gguf_sizes", "expected_bytes", "export_run",
    "is_export", "loss_svg", "model_card", "modelfile_text", "ollama_template", "recover",
    "render_go_template", "shard_size_bytes", "survey", "wants_modelfile",
]
