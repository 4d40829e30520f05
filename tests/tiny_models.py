"""Tiny HuggingFace models built inside the tests: no network, same loading code as a hub model.

Each builder trains a byte-level BPE tokenizer on a little real text, random-initialises a small
causal LM of one architecture family with a fixed seed, and saves both with ``save_pretrained``
into a directory that ``llm_codecs`` then loads exactly as it would load a downloaded model.
"""

from __future__ import annotations

from pathlib import Path

from .helpers import CORPUS

_SPECIAL = "<|endoftext|>"


def _training_text() -> list[str]:
    texts = []
    for rel in ("train/gutenberg", "train/code", "train/json"):
        for path in sorted((CORPUS / rel).glob("*"))[:2]:
            if path.is_file():
                texts.append(path.read_bytes()[:200_000].decode("utf-8", "replace"))
    return texts or ["hello world\r\n" * 100]


def train_tokenizer(vocab_size: int = 512, normalizer=None):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on a little corpus text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    if normalizer is not None:
        tok.normalizer = normalizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[_SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_text(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=_SPECIAL, eos_token=_SPECIAL, unk_token=None
    )


def build_model(directory: Path, family: str = "gpt2", seed: int = 0,
                vocab_size: int = 512, max_positions: int = 128, normalizer=None) -> Path:
    """Save a random tiny model of ``family`` (``gpt2``, ``llama``, ``qwen2``, ``qwen3``) in
    ``directory``."""
    import torch
    import transformers

    tokenizer = train_tokenizer(vocab_size, normalizer)
    vocab = len(tokenizer)
    bos = tokenizer.convert_tokens_to_ids(_SPECIAL)
    common = {"vocab_size": vocab, "bos_token_id": bos, "eos_token_id": bos}
    if family == "gpt2":
        config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2,
                                         n_positions=max_positions, **common)
    elif family == "llama":
        config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=2,
                                          num_key_value_heads=1,
                                          max_position_embeddings=max_positions, **common)
    elif family == "qwen2":
        config = transformers.Qwen2Config(hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=2,
                                          num_key_value_heads=1,
                                          max_position_embeddings=max_positions, **common)
    elif family == "qwen3":
        config = transformers.Qwen3Config(hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=2,
                                          num_key_value_heads=1, head_dim=16,
                                          max_position_embeddings=max_positions, **common)
    else:
        raise ValueError(family)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def random_llama_family(family: str, kv_heads: int):
    """A random ``llama``, ``qwen2`` or ``qwen3`` model (not saved) whose weights are large
    enough that its logits are far from uniform."""
    import torch
    import transformers

    common = dict(vocab_size=97, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=kv_heads,
                  max_position_embeddings=64, initializer_range=0.3)
    if family == "qwen3":
        config = transformers.Qwen3Config(head_dim=12, **common)
    else:
        config = (transformers.LlamaConfig if family == "llama" else transformers.Qwen2Config)(
            **common)
    torch.manual_seed(3)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                param.normal_(1.0 if "norm" in name else 0.0, 0.3)  # untrained biases are 0
    return model
