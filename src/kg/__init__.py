"""kg: the knowledge graph of EU–Japan security and defence cooperation."""

__version__ = "0.1.0"
