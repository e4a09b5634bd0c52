"""A report tokenizer trained locally on the report corpus (no download).

Word level: NFKC + lower-casing, split on whitespace and punctuation, one id per word seen at
least ``min_frequency`` times. T5's special-token convention: ``<pad>`` = 0 (also the decoder
start token), ``</s>`` = 1 (appended to every encoded report), ``<unk>`` = 2. Saved and loaded
as a Hugging Face ``PreTrainedTokenizerFast`` directory (JSON files only).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable
from .. import optional_deps

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"


def train_report_tokenizer(reports: Iterable[str], *, vocab_size: int = 4000, min_frequency: int = 1):
    tokenizers = optional_deps.load("tokenizers", needed_by="train_report_tokenizer")
    Tokenizer, normalizers = tokenizers.Tokenizer, tokenizers.normalizers
    pre_tokenizers, processors = tokenizers.pre_tokenizers, tokenizers.processors
    WordLevel = optional_deps.load("tokenizers.models", needed_by="train_report_tokenizer").WordLevel
    WordLevelTrainer = optional_deps.load("tokenizers.trainers", needed_by="train_report_tokenizer").WordLevelTrainer
    PreTrainedTokenizerFast = optional_deps.load("transformers", needed_by="train_report_tokenizer").PreTrainedTokenizerFast

    core = Tokenizer(WordLevel(unk_token=UNK))
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                               special_tokens=[PAD, EOS, UNK])
    core.train_from_iterator((r for r in reports if r), trainer=trainer)
    core.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", special_tokens=[(EOS, core.token_to_id(EOS))])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                   model_max_length=512)


def load_report_tokenizer(directory):
    PreTrainedTokenizerFast = optional_deps.load("transformers", needed_by="load_report_tokenizer").PreTrainedTokenizerFast
    directory = Path(directory)
    if not (directory / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{directory} holds no tokenizer.json")
    return PreTrainedTokenizerFast.from_pretrained(str(directory), local_files_only=True)
