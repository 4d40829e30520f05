"""Lossless ``bytes <-> token ids`` for HuggingFace byte-level BPE tokenizers.

``tokenizer.decode`` is not an inverse of ``tokenizer.encode`` on arbitrary bytes: it replaces
invalid UTF-8, cleans up spaces and skips special tokens, and normalizers (NFC in the Qwen2
family) change the text before it is split. So this module never calls either:

- decoding goes through an ``id -> bytes`` table built from the vocabulary by inverting GPT-2's
  byte-to-unicode mapping;
- encoding splits the input into valid UTF-8 runs and single invalid bytes, runs only the
  tokenizer's *pre-tokenizer* and *model* on each valid run (no normalizer, no special-token
  matching) and codes every invalid byte as its one-byte token.

Any token sequence whose bytes concatenate to the input decodes back to it, so a split that
differs from the tokenizer's own only costs bits, never correctness; :meth:`ByteTokenizer.encode`
still verifies the concatenation before it returns.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np

from ..errors import UnsupportedTokenizerError

__all__ = ["ByteTokenizer", "UnsupportedTokenizerError"]

# Runs of bytes that are not valid UTF-8 come back from "surrogateescape" as U+DC80..U+DCFF.
_ESCAPED = re.compile("[\udc80-\udcff]+")
# Pieces repeat a lot (words, indentation); caching their ids makes encoding several times faster.
_PIECE_CACHE_LIMIT = 1 << 16


@cache
def _byte_decoder() -> dict[str, int]:
    # GPT-2's table: printable bytes map to themselves, the rest to U+0100 and up.
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _uses_byte_level(component) -> bool:
    if component is None:
        return False
    text = type(component).__name__
    if text == "ByteLevel":
        return True
    # Sequence pre-tokenizers (Llama-3, Qwen2) do not expose their members; their JSON does.
    try:
        return '"ByteLevel"' in component.__getstate__().decode()
    except (AttributeError, UnicodeDecodeError, TypeError):
        return False


class ByteTokenizer:
    """Byte-exact tokenization over a HuggingFace fast tokenizer.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerFast
        A byte-level BPE tokenizer (GPT-2, Llama-3, Qwen2, SmolLM families, or one trained with
        ``tokenizers.pre_tokenizers.ByteLevel``).

    Raises
    ------
    UnsupportedTokenizerError
        If the tokenizer is not a fast byte-level BPE tokenizer, or its vocabulary lacks one of
        the 256 byte symbols (it could not code every byte), naming the reason.
    """

    def __init__(self, tokenizer) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise UnsupportedTokenizerError(
                f"{type(tokenizer).__name__} is not a fast (Rust) tokenizer; only byte-level BPE "
                "tokenizers can code arbitrary bytes"
            )
        if type(backend.model).__name__ != "BPE" or not _uses_byte_level(backend.pre_tokenizer):
            raise UnsupportedTokenizerError(
                f"tokenizer model {type(backend.model).__name__} with pre-tokenizer "
                f"{type(backend.pre_tokenizer).__name__} is not byte-level BPE: it cannot "
                "represent arbitrary bytes (SentencePiece tokenizers without a byte-level "
                "pre-tokenizer are not supported)"
            )
        self._backend = backend
        self._model = backend.model
        self._pre_tokenizer = backend.pre_tokenizer
        decoder = _byte_decoder()
        vocab = backend.get_vocab(with_added_tokens=False)
        self.vocab_size = max(backend.get_vocab(with_added_tokens=True).values()) + 1
        table: list[bytes | None] = [None] * self.vocab_size
        for token, idx in vocab.items():
            try:
                table[idx] = bytes(decoder[c] for c in token)
            except KeyError:
                table[idx] = None  # not a byte-level token: never produced, invalid to decode
        self._id_to_bytes = table
        byte_ids = np.full(256, -1, dtype=np.int64)
        for char, b in decoder.items():
            if char in vocab:
                byte_ids[b] = vocab[char]
        missing = np.flatnonzero(byte_ids < 0)
        if missing.size:
            raise UnsupportedTokenizerError(
                f"tokenizer vocabulary lacks the byte-level symbol of {missing.size} byte "
                f"value(s) (e.g. 0x{int(missing[0]):02x}); it cannot represent arbitrary bytes"
            )
        self._byte_ids = byte_ids
        self._piece_cache: dict[str, list[int]] = {}
        # Decoding table as one flat array plus offsets: a block decodes with two numpy gathers.
        lengths = np.array([len(b) if b is not None else 0 for b in table], dtype=np.int64)
        self._valid = np.array([b is not None for b in table], dtype=bool)
        self._offsets = np.concatenate([[0], np.cumsum(lengths)])
        self._flat = np.frombuffer(b"".join(b for b in table if b is not None), dtype=np.uint8)

    def _piece_ids(self, piece: str) -> list[int]:
        ids = self._piece_cache.get(piece)
        if ids is None:
            ids = [t.id for t in self._model.tokenize(piece)]
            if len(self._piece_cache) < _PIECE_CACHE_LIMIT:
                self._piece_cache[piece] = ids
        return ids

    def encode(self, data: bytes) -> np.ndarray:
        """Token ids whose bytes concatenate exactly to ``data``.

        Parameters
        ----------
        data : bytes
            Any bytes: text, invalid UTF-8, NUL, binary.

        Returns
        -------
        numpy.ndarray
            int64 token ids.

        Raises
        ------
        UnsupportedTokenizerError
            If the tokenizer's pre-tokenizer dropped or changed bytes (the result is checked).
        """
        text = bytes(data).decode("utf-8", "surrogateescape")
        ids: list[int] = []
        pos = 0
        for match in _ESCAPED.finditer(text):
            self._encode_text(text[pos : match.start()], ids)
            ids.extend(int(self._byte_ids[ord(c) - 0xDC00]) for c in match.group())
            pos = match.end()
        self._encode_text(text[pos:], ids)
        out = np.asarray(ids, dtype=np.int64)
        if self.decode(out) != bytes(data):
            raise UnsupportedTokenizerError(
                "the tokenizer's pre-tokenizer does not preserve the input bytes"
            )
        return out

    def _encode_text(self, text: str, ids: list[int]) -> None:
        if not text:
            return
        for piece, _ in self._pre_tokenizer.pre_tokenize_str(text):
            ids.extend(self._piece_ids(piece))

    def decode(self, ids, limit: int | None = None) -> bytes | None:
        """The bytes of ``ids`` concatenated, or None if any id is not a byte-level token or
        they would make more than ``limit`` bytes (checked before the bytes are gathered)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return b""
        if ids.min() < 0 or ids.max() >= self.vocab_size or not self._valid[ids].all():
            return None
        starts = self._offsets[ids]
        lengths = self._offsets[ids + 1] - starts
        # Gather every byte: positions = start of its token + index within the token.
        ends = np.cumsum(lengths)
        if limit is not None and int(ends[-1]) > limit:
            return None
        within = np.arange(int(ends[-1])) - np.repeat(ends - lengths, lengths)
        return self._flat[np.repeat(starts, lengths) + within].tobytes()
