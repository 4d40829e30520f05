"""Thin adapters of :mod:`llm_codecs.api` to other libraries' plugin interfaces."""
