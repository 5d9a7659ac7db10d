"""The CTC vocabulary of a model: which logit means which character."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from w2v2_onnx.errors import ModelDirectoryError


@dataclass(frozen=True)
class Vocabulary:
    """CTC output tokens with the roles the decoders need.

    Attributes:
        tokens: token ``i`` is logit ``i``.
        blank_id: index of the CTC blank.
        word_delimiter: token that separates words (decoded as a space), or None.
        special_ids: indices never written into a transcript (blank, unk, bos, eos).
    """

    tokens: tuple[str, ...]
    blank_id: int
    word_delimiter: str | None
    special_ids: frozenset[int]

    @classmethod
    def from_tokens(
        cls,
        tokens: Sequence[str],
        *,
        blank_id: int = 0,
        word_delimiter: str | None = "|",
        special_tokens: Iterable[str] = (),
    ) -> Vocabulary:
        """Build a vocabulary, checking that the roles name tokens that exist."""
        tokens = tuple(str(t) for t in tokens)
        if not tokens:
            raise ModelDirectoryError("vocabulary is empty: a CTC model needs at least a blank and one token")
        if len(set(tokens)) != len(tokens):
            dupes = sorted({t for t in tokens if tokens.count(t) > 1})
            raise ModelDirectoryError(f"vocabulary has duplicate tokens {dupes}: every token must be unique")
        if not 0 <= blank_id < len(tokens):
            raise ModelDirectoryError(f"blank_id {blank_id} is outside the vocabulary of {len(tokens)} tokens")
        if word_delimiter is not None and word_delimiter not in tokens:
            raise ModelDirectoryError(f"word delimiter {word_delimiter!r} is not in the vocabulary")
        index = {t: i for i, t in enumerate(tokens)}
        special = {blank_id} | {index[t] for t in special_tokens if t in index}
        return cls(tokens, blank_id, word_delimiter, frozenset(special))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def delimiter_id(self) -> int | None:
        """Index of the word delimiter, or None."""
        return None if self.word_delimiter is None else self.tokens.index(self.word_delimiter)

    def piece(self, token_id: int) -> str:
        """Text a token contributes to a transcript: '' for special tokens, ' ' for the delimiter."""
        if token_id in self.special_ids:
            return ""
        token = self.tokens[token_id]
        return " " if token == self.word_delimiter else token
