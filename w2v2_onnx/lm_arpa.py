"""A pure-Python n-gram model read from an ARPA file, queried like KenLM.

Used when the compiled ``kenlm`` module is not installed: it returns the same log10 probabilities as KenLM
(back-off through shorter contexts, ``<unk>`` for unknown words) and needs nothing but the standard library.
It keeps every n-gram in one dict, so it suits small and medium models (tens of MB of ARPA); large models
should be queried through KenLM (``pip install 'w2v2-onnx[lm]'``).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

from w2v2_onnx.errors import LanguageModelError

# KenLM's probability for an unknown word when the model has no <unk> entry.
_MISSING_UNK_LOG10 = -100.0

State = tuple[str, ...]


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115 - closed by the caller's with-block


def iter_arpa(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(order, tab-separated fields)`` for every n-gram line of an ARPA file.

    Args:
        path: an ARPA file (optionally gzip-compressed, ``.gz``).

    Returns:
        An iterator of the n-gram order and the line's fields ``[log10 p, words, (backoff)]``.

    Raises:
        LanguageModelError: if the file is missing or not ARPA.
    """
    path = Path(path)
    if not path.is_file():
        raise LanguageModelError(f"language model file not found: {path}")
    order = 0
    seen_data = False
    try:
        with _open_text(path) as handle:
            for raw in handle:
                line = raw.strip()
                if not line:
                    continue
                if line == "\\data\\":
                    seen_data = True
                    continue
                if line.startswith("\\") and line.endswith("-grams:"):
                    order = int(line[1:-7])
                    continue
                if line == "\\end\\":
                    break
                if order and seen_data:
                    yield order, line.split("\t")
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        raise LanguageModelError(f"{path} is not a readable ARPA file: {exc}") from exc
    if not seen_data:
        raise LanguageModelError(f"{path} is not an ARPA file: no \\data\\ header")


def read_arpa_unigrams(path: str | Path) -> set[str]:
    """Return the words of an ARPA file's 1-gram section that carry a back-off weight.

    This is pyctcdecode's rule (only 3-column lines count), kept so partial-word scoring matches it.

    Args:
        path: an ARPA file.

    Returns:
        The set of unigram words.

    Raises:
        LanguageModelError: if the file is missing, not ARPA, or has no such unigram.
    """
    unigrams: set[str] = set()
    for order, fields in iter_arpa(path):
        if order > 1:
            break
        if len(fields) == 3:
            unigrams.add(fields[1])
    if not unigrams:
        raise LanguageModelError(f"no unigrams found in the ARPA file {path}")
    return unigrams


class ArpaModel:
    """An n-gram back-off model held in dicts, with KenLM's query semantics.

    States are tuples of at most ``order - 1`` preceding words. Each word is one shared string, log
    probabilities and back-off weights sit in two dicts (most n-grams have no back-off weight), and the
    unigram list is collected in the same pass: the bundled 3-gram (158,000 n-grams) takes about 28 MB of
    Python objects instead of 47 MB, read once instead of twice.
    """

    def __init__(self, path: str | Path) -> None:
        """Read an ARPA file.

        Args:
            path: the ARPA file (``.arpa`` or ``.arpa.gz``).

        Raises:
            LanguageModelError: if the file is missing, unreadable or has no n-grams.
        """
        self.path = str(path)
        shared: dict[str, str] = {}  # one string object per word, however many n-grams hold it
        logps: dict[State, float] = {}
        backoffs: dict[State, float] = {}
        unigrams: set[str] = set()
        order = 0
        try:
            for n, fields in iter_arpa(path):
                words = tuple([shared.setdefault(w, w) for w in fields[1].split(" ")])
                if len(words) != n:
                    raise LanguageModelError(f"{path}: {n}-gram line has {len(words)} words: {fields!r}")
                logps[words] = float(fields[0])
                if len(fields) > 2:
                    backoff = float(fields[2])
                    if backoff:
                        backoffs[words] = backoff
                    if n == 1:
                        unigrams.add(words[0])
                order = max(order, n)
        except (IndexError, ValueError) as exc:
            raise LanguageModelError(f"{path}: malformed ARPA n-gram line ({exc})") from exc
        if not logps:
            raise LanguageModelError(f"{path} holds no n-grams")
        self.order = order
        self._logps = logps
        self._backoffs = backoffs
        #: the 1-gram words that carry a back-off column (:func:`read_arpa_unigrams`'s rule), read in the same pass
        self.arpa_unigrams = frozenset(unigrams)
        # like KenLM, <unk> is not "in" the model: it is what unknown words map to
        self._vocab = frozenset(w[0] for w in logps if len(w) == 1 and w[0] != "<unk>")

    def __contains__(self, word: str) -> bool:
        return word in self._vocab

    def begin_state(self) -> State:
        """State at the start of a sentence (after ``<s>``)."""
        return ("<s>",)

    def null_state(self) -> State:
        """State with no context."""
        return ()

    def score(self, state: State, word: str) -> tuple[float, State]:
        """Return ``(log10 p(word | state), next state)``, backing off like KenLM."""
        if word not in self._vocab:
            word = "<unk>"  # (a model without <unk> gives unknown words KenLM's -100)
        logps, backoffs = self._logps, self._backoffs
        context = state
        backoff = 0.0
        while True:
            logp = logps.get((*context, word))
            if logp is not None:
                logp += backoff
                break
            if not context:
                logp = _MISSING_UNK_LOG10 + backoff
                break
            backoff += backoffs.get(context, 0.0)
            context = context[1:]
        full = (*state, word)
        return logp, full[-(self.order - 1):] if self.order > 1 else ()
