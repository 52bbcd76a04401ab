"""LoRA Studio: fine-tune an open LLM with QLoRA on your own GPU."""

__version__ = "0.1.0"
