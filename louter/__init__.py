"""louter: a translator and router between LLM clients and LLM backends."""

__version__ = "0.1.0"
