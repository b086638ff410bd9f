"""Byte-level BPE, char tokenizer and word vectorizer."""
