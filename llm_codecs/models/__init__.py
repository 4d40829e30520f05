"""Where the LLM codec's predictions come from: model loading, caching and lossless tokenization."""
