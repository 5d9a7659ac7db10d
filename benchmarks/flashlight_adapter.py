"""flashlight-text's CTC decoders (what torchaudio's ``ctc_decoder`` wraps), set up for the benchmark.

flashlight fuses a word-level KenLM only through a lexicon: output words are restricted to the lexicon (the
LM's unigrams here), unlike pyctcdecode and w2v2-onnx, which spell any word and penalise unknown ones.
Without an LM its lexicon-free decoder is a plain CTC prefix beam search.
"""

from __future__ import annotations

import numpy as np
from flashlight.lib.text.decoder import (
    CriterionType,
    KenLM,
    LexiconDecoder,
    LexiconDecoderOptions,
    LexiconFreeDecoder,
    LexiconFreeDecoderOptions,
    SmearingMode,
    Trie,
    ZeroLM,
)
from flashlight.lib.text.dictionary import Dictionary, create_word_dict


class FlashlightDecoder:
    """Beam search by flashlight-text; ``tokens`` uses '<pad>' as blank and '|' as word boundary."""

    def __init__(self, tokens: list[str], *, lm: str | None = None, unigrams: set[str] | None = None,
                 beam_size: int = 100, lm_weight: float = 0.5, word_score: float = 1.5,
                 unk_score: float = float("-inf"), beam_threshold: float = 25.0) -> None:
        self.tokens = tokens
        self.token_dict = Dictionary()
        for token in tokens:
            self.token_dict.add_entry(token)
        blank, sil = tokens.index("<pad>"), tokens.index("|")
        if lm is None:
            options = LexiconFreeDecoderOptions(beam_size, len(tokens), beam_threshold, 0.0, 0.0, False,
                                                CriterionType.CTC)
            self.decoder = LexiconFreeDecoder(options, ZeroLM(), sil, blank, [])
            return
        words = sorted(w for w in unigrams
                       if w not in ("<s>", "</s>", "<unk>") and all(c in tokens for c in w))
        lexicon = {w: [list(w) + ["|"]] for w in words}
        lexicon["<unk>"] = []  # flashlight's word dictionary must know <unk>
        word_dict = create_word_dict(lexicon)
        kenlm = KenLM(lm, word_dict)
        trie = Trie(len(tokens), sil)
        start = kenlm.start(False)
        for word, spellings in lexicon.items():
            idx = word_dict.get_index(word)
            _, score = kenlm.score(start, idx)
            for spelling in spellings:
                trie.insert([self.token_dict.get_index(t) for t in spelling], idx, score)
        trie.smear(SmearingMode.MAX)
        options = LexiconDecoderOptions(beam_size, len(tokens), beam_threshold, lm_weight, word_score,
                                        unk_score, 0.0, False, CriterionType.CTC)
        self.decoder = LexiconDecoder(options, trie, kenlm, sil, blank, word_dict.get_index("<unk>"), [],
                                      False)

    def decode(self, log_probs: np.ndarray) -> str:
        """Best transcript of a ``[frames, vocab]`` float32 log-probability matrix."""
        emissions = np.ascontiguousarray(log_probs, dtype=np.float32)
        result = self.decoder.decode(emissions.ctypes.data, emissions.shape[0], emissions.shape[1])[0]
        out, prev = [], None
        for t in result.tokens:
            if t != prev and t >= 0:
                out.append(self.tokens[t])
            prev = t
        text = "".join("" if t.startswith("<") else (" " if t == "|" else t) for t in out)
        return " ".join(text.split())
