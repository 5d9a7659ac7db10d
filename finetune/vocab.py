"""The character vocabulary and the Hugging Face processor saved with every checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
WORD_DELIMITER = "|"

#: Token ``i`` is logit ``i``. ``[PAD]`` is the CTC blank and has id 0.
VOCAB_TOKENS: tuple[str, ...] = (
    PAD_TOKEN,
    UNK_TOKEN,
    WORD_DELIMITER,
    "'",
    *(chr(c) for c in range(ord("A"), ord("Z") + 1)),
)


def vocab_dict() -> dict[str, int]:
    """Return the vocabulary as a Hugging Face ``{token: id}`` mapping."""
    return {token: i for i, token in enumerate(VOCAB_TOKENS)}


def write_vocab_json(directory: str | Path) -> Path:
    """Write ``vocab.json`` into ``directory`` (created if missing) and return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "vocab.json"
    path.write_text(json.dumps(vocab_dict(), indent=1) + "\n", encoding="utf-8")
    return path


def build_processor(directory: str | Path, sampling_rate: int = 16000) -> Any:
    """Build the tokenizer, feature extractor and processor, and save them into ``directory``.

    Args:
        directory: where ``vocab.json`` and the processor files are written (the checkpoint dir).
        sampling_rate: the rate the model is trained at.

    Returns:
        A ``transformers.Wav2Vec2Processor`` whose tokenizer uses :data:`VOCAB_TOKENS`.
    """
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    vocab_path = write_vocab_json(directory)
    tokenizer = Wav2Vec2CTCTokenizer(
        str(vocab_path),
        unk_token=UNK_TOKEN,
        pad_token=PAD_TOKEN,
        word_delimiter_token=WORD_DELIMITER,
        bos_token=None,  # the defaults <s> and </s> would be added as ids 30 and 31, past the CTC head
        eos_token=None,
        do_lower_case=False,
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=sampling_rate,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    processor = Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)
    processor.save_pretrained(str(directory))
    return processor


def encode_transcript(text: str) -> list[int]:
    """Map a normalised transcript to label ids (spaces become the word delimiter).

    Characters outside the vocabulary map to ``[UNK]``; normalised text has none.
    """
    index = vocab_dict()
    unk = index[UNK_TOKEN]
    return [index.get(WORD_DELIMITER if ch == " " else ch, unk) for ch in text]


def decode_ids(ids: list[int] | tuple[int, ...]) -> str:
    """Greedy CTC collapse of frame-level ids into text (repeats merged, blanks and specials removed)."""
    out: list[str] = []
    previous = -1
    for token_id in ids:
        token_id = int(token_id)
        if token_id != previous and token_id > 1:
            token = VOCAB_TOKENS[token_id]
            out.append(" " if token == WORD_DELIMITER else token)
        previous = token_id
    return " ".join("".join(out).split())
