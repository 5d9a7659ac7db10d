"""Language-model and hotword scoring for beam search, with pyctcdecode's scoring rules.

An n-gram model is loaded with :func:`load_ngram_model`: through the compiled ``kenlm`` module when it is
installed (ARPA or KenLM binary files), else through the pure-Python :class:`~w2v2_onnx.lm_arpa.ArpaModel`
(ARPA only). Both give log10 probabilities; :class:`LanguageModelScorer` turns them into the natural-log,
alpha/beta-weighted scores the beam search adds, exactly as pyctcdecode 0.5.0 does.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from w2v2_onnx.errors import LanguageModelError, MissingDependencyError
from w2v2_onnx.lm_arpa import ArpaModel, read_arpa_unigrams

logger = logging.getLogger(__name__)

LOG10_TO_LN = 1.0 / math.log10(math.e)
AVG_WORD_LEN = 6  # pyctcdecode's expected word length for scaling the unknown-prefix penalty


class NgramModel(Protocol):
    """What the scorer needs from an n-gram model (log10 scores, opaque states)."""

    order: int

    def __contains__(self, word: str) -> bool: ...
    def begin_state(self) -> Any: ...
    def null_state(self) -> Any: ...
    def score(self, state: Any, word: str) -> tuple[float, Any]: ...


class KenlmModel:
    """An n-gram model queried through the compiled ``kenlm`` module; picklable (reloads from its path)."""

    def __init__(self, path: str | Path) -> None:
        """Load an ARPA or KenLM binary file.

        Raises:
            MissingDependencyError: if ``kenlm`` is not installed.
            LanguageModelError: if KenLM cannot read the file.
        """
        try:
            import kenlm
        except ImportError as exc:
            raise MissingDependencyError("kenlm", "lm", "loading a KenLM binary language model") from exc
        self.path = str(path)
        self._kenlm = kenlm
        config = kenlm.Config()
        config.show_progress = False  # KenLM draws a progress bar on stderr while it reads an ARPA file
        try:
            self._model = kenlm.Model(self.path, config)
        except (OSError, RuntimeError, ValueError) as exc:  # UnicodeDecodeError for garbage files
            raise LanguageModelError(f"KenLM could not load {self.path}: {exc}") from exc
        self.order = int(self._model.order)

    def __getstate__(self) -> dict[str, str]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def __contains__(self, word: str) -> bool:
        return word in self._model

    def begin_state(self) -> Any:
        """State after ``<s>``."""
        state = self._kenlm.State()
        self._model.BeginSentenceWrite(state)
        return state

    def null_state(self) -> Any:
        """State with no context."""
        state = self._kenlm.State()
        self._model.NullContextWrite(state)
        return state

    def score(self, state: Any, word: str) -> tuple[float, Any]:
        """Return ``(log10 p(word | state), next state)``."""
        out = self._kenlm.State()
        return self._model.BaseScore(state, word, out), out


def _is_arpa(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise LanguageModelError(f"cannot read language model {path}: {exc}") from exc
    return path.suffix == ".gz" or head.lstrip().startswith(b"\\data\\")


def load_ngram_model(path: str | Path, *, backend: str = "auto") -> NgramModel:
    """Load an n-gram language model.

    Args:
        path: an ARPA file (``.arpa``, ``.arpa.gz`` for the Python backend) or a KenLM binary.
        backend: ``"kenlm"``, ``"python"`` or ``"auto"`` (kenlm when installed, else Python for ARPA).

    Returns:
        A model with ``order``, ``begin_state``, ``null_state``, ``score`` and word membership.

    Raises:
        LanguageModelError: if the file is missing or unreadable, or ``backend`` is unknown.
        MissingDependencyError: if a KenLM binary (or ``backend="kenlm"``) is asked for without ``kenlm``.
    """
    path = Path(path)
    if not path.is_file():
        raise LanguageModelError(f"language model file not found: {path}")
    if backend not in ("auto", "kenlm", "python"):
        raise LanguageModelError(f"unknown language model backend {backend!r}: use auto, kenlm or python")
    arpa = _is_arpa(path)
    if backend == "python" or (backend == "auto" and arpa and path.suffix == ".gz"):
        if not arpa:
            raise LanguageModelError(f"{path} is not an ARPA file; the Python backend reads ARPA only")
        return ArpaModel(path)
    try:
        return KenlmModel(path)
    except MissingDependencyError as exc:
        if backend == "kenlm":
            raise
        if not arpa:  # say which file, and why it is taken for a binary
            raise MissingDependencyError(
                "kenlm", "lm", f"{path} has no ARPA \\data\\ header, so reading it as a KenLM binary "
                               f"language model") from exc
        logger.info("kenlm is not installed: reading %s with the pure-Python ARPA backend", path)
        return ArpaModel(path)


def unigrams_for(path: str | Path, model: NgramModel | None = None) -> set[str] | frozenset[str] | None:
    """Known words of a model: from the ARPA itself, or from ``<binary>.unigrams.txt`` next to a binary.

    Args:
        path: the model file.
        model: the model loaded from ``path``, if any: an :class:`ArpaModel` already holds its unigrams
            (the file is not read again).

    Returns:
        The words, or None (with a warning) for a binary without a unigram list.

    Raises:
        LanguageModelError: if the file cannot be read.
    """
    if isinstance(model, ArpaModel) and model.arpa_unigrams:  # (none: read the file, which says why)
        return model.arpa_unigrams
    path = Path(path)
    if _is_arpa(path):
        return read_arpa_unigrams(path)
    sidecar = path.with_name(path.name + ".unigrams.txt")
    if sidecar.is_file():
        return {w for w in sidecar.read_text(encoding="utf-8").split() if w}
    logger.warning("no unigram list for %s (expected %s): partial words will all count as unknown",
                   path, sidecar)
    return None


class LanguageModelScorer:
    """Scores words and partial words with an n-gram model, as pyctcdecode's ``LanguageModel`` does."""

    def __init__(self, model: NgramModel, unigrams: Iterable[str] | None, *, alpha: float, beta: float,
                 unk_score_offset: float = -10.0, score_boundary: bool = True) -> None:
        """Wrap a loaded model.

        Args:
            model: the n-gram model.
            unigrams: known words (prefixes of them are not penalised), or None to penalise every prefix.
            alpha: LM weight; beta: bonus per word; unk_score_offset: log10 penalty for unknown words.
            score_boundary: score ``<s>`` and ``</s>`` around the utterance.
        """
        self.model = model
        self.order = model.order
        self.alpha = alpha
        self.beta = beta
        self.unk_score_offset = unk_score_offset
        self.score_boundary = score_boundary
        self.unigrams = frozenset(w for w in unigrams if w in model) if unigrams is not None else None
        self._prefixes = (None if self.unigrams is None else
                          frozenset(w[:i] for w in self.unigrams for i in range(1, len(w) + 1)))
        #: what the beam search's C loop builds from this scorer (shared by copies; not pickled)
        self.search_cache: dict = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "search_cache": {}}

    def start_state(self) -> Any:
        """The model state before the first word."""
        return self.model.begin_state() if self.score_boundary else self.model.null_state()

    def score(self, state: Any, word: str, is_last_word: bool = False) -> tuple[float, Any]:
        """Return the weighted natural-log score of ``word`` after ``state`` and the next state."""
        logp, end_state = self.model.score(state, word)
        if (self.unigrams and word not in self.unigrams) or word not in self.model:
            logp += self.unk_score_offset
        if is_last_word and self.score_boundary:
            logp += self.model.score(end_state, "</s>")[0]
        return self.alpha * logp * LOG10_TO_LN + self.beta, end_state

    def known_prefixes(self) -> frozenset[str]:
        """Every prefix of a known word (empty without a word list: then no prefix is known)."""
        return self._prefixes or frozenset()

    def score_partial_word(self, part: str) -> float:
        """Penalty for an unfinished word that is no known word's prefix (0 when it is one)."""
        is_oov = 1.0 if self._prefixes is None else float(part not in self._prefixes)
        penalty = self.unk_score_offset * is_oov
        if len(part) > AVG_WORD_LEN:
            penalty = penalty * len(part) / AVG_WORD_LEN
        return penalty


class HotwordScorer:
    """Bonus for hotwords: ``weight`` per whole hotword in the text, a share of it per hotword prefix."""

    def __init__(self, hotwords: Iterable[str], weight: float) -> None:
        """Build the matcher.

        Args:
            hotwords: words or phrases; phrases are split into words, as pyctcdecode does.
            weight: natural-log bonus per matched hotword word.
        """
        words = [w for phrase in hotwords for w in str(phrase).split()]
        self._words = frozenset(words)
        self.weight = float(weight) if words else 0.0
        self.words = tuple(sorted(set(words), key=lambda w: (len(w), w)))
        self._pattern = (re.compile("|".join(r"(?<!\S)" + re.escape(w) + r"(?!\S)"
                                              for w in sorted(words, key=len, reverse=True)))
                         if words else None)
        self._shortest: dict[str, int] = {}
        for word in self.words:  # sorted by length, so the first word seen for a prefix is its shortest
            for i in range(1, len(word) + 1):
                self._shortest.setdefault(word[:i], len(word))
        #: what the beam search's C loop builds from this scorer (not pickled)
        self.search_cache: dict = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "search_cache": {}}

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __contains__(self, part: str) -> bool:
        return part in self._shortest

    def score(self, text: str) -> float:
        """Bonus for the whole hotwords in ``text``."""
        if self._pattern is None:
            return 0.0
        return self.score_count(len(self._pattern.findall(text)))

    def score_count(self, count: int) -> float:
        """Bonus for ``count`` whole hotwords: what :meth:`score` gives a text holding that many."""
        return 0.0 if self._pattern is None else self.weight * count

    def is_word(self, word: str) -> bool:
        """Whether ``word`` (no spaces) is one of the hotwords, so a text ending in it holds one more."""
        return word in self._words

    def prefixes(self) -> list[str]:
        """Every prefix of every hotword word."""
        return list(self._shortest)

    def score_partial_word(self, part: str) -> float:
        """Bonus for an unfinished word that is a hotword prefix, scaled by how much of it is spelt."""
        shortest = self._shortest.get(part)
        return 0.0 if shortest is None else self.weight * len(part) / shortest
