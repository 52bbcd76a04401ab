"""GGUF files for llama.cpp, Ollama and LM Studio: a merged model written with the `gguf` package
(write.py: arch.py, tensors.py, vocab.py), quantized by llama.cpp (quantize.py), and checked by
answering in llama.cpp beside transformers (check.py). llama.cpp runs in a child process (llama_run.py).
Both libraries are the optional extra `lora-studio[gguf]` (quantize.missing_dependency says so)."""

from studio.core.export.to_gguf.check import GgufCheck, Reference, answer_with_gguf, check_gguf, reference_answers
from studio.core.export.to_gguf.files import GgufFile, write_gguf_files
from studio.core.export.to_gguf.llama_run import Cancelled
from studio.core.export.to_gguf.quantize import INSTALL, SIXTEEN, TYPES, check_types, estimated_bytes, missing_dependency
from studio.core.export.to_gguf.write import write_gguf

__all__ = ["INSTALL", "SIXTEEN", "TYPES", "Cancelled", "GgufCheck", "GgufFile", "Reference", "answer_with_gguf",
           "check_gguf", "check_types", "estimated_bytes", "missing_dependency", "reference_answers", "write_gguf",
           "write_gguf_files"]
