"""Seq-VCR and pause tokens for the Hugging Face Trainer."""

__version__ = "0.1.0"
