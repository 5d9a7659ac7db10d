"""Build word n-gram language models: interpolated modified Kneser-Ney, written as ARPA.

KenLM's estimator ``lmplz`` is not on PyPI, so :func:`estimate_kneser_ney` implements the same estimate
(Chen & Goodman's interpolated modified Kneser-Ney with lmplz's conventions: adjusted counts for lower
orders except n-grams starting with ``<s>``, three discounts per order from the count-of-counts, unigrams
interpolated with a uniform distribution that gives ``<unk>`` its mass); the tests check it against ARPA
files written by lmplz. When KenLM's ``lmplz`` / ``build_binary`` programs are on PATH they are used instead
(``build_lm(..., estimator="lmplz")``), and ``build_binary`` also writes a KenLM binary.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from w2v2_onnx.errors import InvalidOptionError, LanguageModelError

logger = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback's defaults
Ngram = tuple[str, ...]


def read_sentences(paths: Iterable[str | Path], *, uppercase: bool = True,
                   exclude: Collection[tuple[str, ...]] = ()) -> Iterator[list[str]]:
    """Yield each non-empty line of the text files as a list of words.

    Args:
        paths: UTF-8 text files, one sentence per line.
        uppercase: upper-case the text.
        exclude: sentences (word tuples, as read) to leave out, e.g. the test set's (see :func:`excluded`).

    Returns:
        An iterator of word lists.

    Raises:
        LanguageModelError: if a file does not exist or is not UTF-8 text.
    """
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise LanguageModelError(f"text file not found: {path}")
        with open(path, encoding="utf-8") as handle:
            try:
                for line in handle:
                    words = (line.upper() if uppercase else line).split()
                    if words and (not exclude or tuple(words) not in exclude):
                        yield words
            except UnicodeDecodeError as exc:
                raise LanguageModelError(f"{path} is not UTF-8 text ({exc.reason}); text files must be UTF-8") \
                    from exc


def excluded(paths: Iterable[str | Path], *, uppercase: bool = True) -> frozenset[tuple[str, ...]]:
    """The sentences of ``paths`` (one per line, read like the LM text) as a set to pass as ``exclude``.

    Raises:
        LanguageModelError: if a file does not exist or is not UTF-8 text.
    """
    return frozenset(tuple(words) for words in read_sentences(paths, uppercase=uppercase))


def _discounts(count_of_counts: Counter) -> tuple[float, float, float]:
    n1, n2, n3, n4 = (count_of_counts.get(k, 0) for k in (1, 2, 3, 4))
    try:
        y = n1 / (n1 + 2 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    except ZeroDivisionError:
        d = (-1.0, -1.0, -1.0)
    if any(not 0 < value <= k + 1 for k, value in enumerate(d)):
        logger.warning("count-of-counts %s give invalid discounts %s: using the fallback %s (corpus too "
                       "small for modified Kneser-Ney)", (n1, n2, n3, n4), d, FALLBACK_DISCOUNTS)
        return FALLBACK_DISCOUNTS
    return d


def estimate_kneser_ney(sentences: Iterable[list[str]], order: int) -> list[dict[Ngram, tuple[float, float]]]:
    """Estimate an interpolated modified Kneser-Ney model.

    Args:
        sentences: word lists, without ``<s>`` / ``</s>``.
        order: the n-gram order (>= 1).

    Returns:
        For each order 1..N, a dict from n-gram to ``(log10 probability, log10 back-off)``, as in ARPA.

    Raises:
        InvalidOptionError: if ``order`` < 1; LanguageModelError: if there are no words.
    """
    if order < 1:
        raise InvalidOptionError(f"order must be at least 1, got {order}")
    top: Counter = Counter()
    bos_counts: Counter = Counter()  # raw counts of lower-order n-grams that start with <s>
    for words in sentences:
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                gram = tuple(padded[i:i + n])
                if n == order:
                    top[gram] += 1
                elif i == 0:
                    bos_counts[gram] += 1
    if not top and not bos_counts:
        raise LanguageModelError("no words in the training text")

    # adjusted counts: the top order keeps raw counts; a lower-order n-gram counts its distinct left words,
    # except n-grams starting with <s>, which have no left word and keep their raw counts
    adjusted: list[Counter] = [Counter() for _ in range(order + 1)]
    adjusted[order] = top
    for n in range(order, 1, -1):
        for gram in adjusted[n]:  # <s> counts as a left word too
            adjusted[n - 1][gram[1:]] += 1
        for gram, count in bos_counts.items():
            if len(gram) == n - 1:
                adjusted[n - 1][gram] = count
    if order == 1:
        adjusted[1] = Counter({g: c for g, c in top.items()})
    adjusted[1].pop((BOS,), None)

    vocab_size = len(adjusted[1]) + (0 if (UNK,) in adjusted[1] else 1)  # words + </s> + <unk>
    probs: list[dict[Ngram, float]] = [{} for _ in range(order + 1)]
    gammas: list[dict[Ngram, float]] = [{} for _ in range(order + 1)]
    for n in range(1, order + 1):
        d = _discounts(Counter(adjusted[n].values()))
        totals: dict[Ngram, float] = defaultdict(float)
        kinds: dict[Ngram, list[int]] = defaultdict(lambda: [0, 0, 0])
        for gram, count in adjusted[n].items():
            totals[gram[:-1]] += count
            kinds[gram[:-1]][min(count, 3) - 1] += 1
        for context, total in totals.items():
            k = kinds[context]
            gammas[n][context] = (d[0] * k[0] + d[1] * k[1] + d[2] * k[2]) / total
        for gram, count in adjusted[n].items():
            context = gram[:-1]
            lower = probs[n - 1][gram[1:]] if n > 1 else 1.0 / vocab_size
            probs[n][gram] = (count - d[min(count, 3) - 1]) / totals[context] + gammas[n][context] * lower
        if n == 1:
            probs[1][(UNK,)] = gammas[1][()] / vocab_size + probs[1].get((UNK,), 0.0)

    model: list[dict[Ngram, tuple[float, float]]] = []
    for n in range(1, order + 1):
        level = {}
        for gram, p in probs[n].items():
            backoff = gammas[n + 1].get(gram) if n < order else None
            level[gram] = (math.log10(p), 0.0 if backoff is None else math.log10(backoff))
        if n == 1:
            bos_backoff = gammas[2].get((BOS,)) if order > 1 else None
            level[(BOS,)] = (0.0, 0.0 if bos_backoff is None else math.log10(bos_backoff))
        model.append(level)
    return model


def write_arpa(model: list[dict[Ngram, tuple[float, float]]], path: str | Path) -> None:
    """Write a model from :func:`estimate_kneser_ney` as an ARPA file (sorted, 7 significant digits).

    Args:
        model: per order, n-gram -> (log10 probability, log10 back-off).
        path: the output file.

    Raises:
        OSError: if the file cannot be written.
    """
    order = len(model)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\\data\\\n")
        for n, level in enumerate(model, start=1):
            handle.write(f"ngram {n}={len(level)}\n")
        for n, level in enumerate(model, start=1):
            handle.write(f"\n\\{n}-grams:\n")
            for gram in sorted(level):
                logp, backoff = level[gram]
                line = f"{logp:.7g}\t{' '.join(gram)}"
                handle.write(line + (f"\t{backoff:.7g}\n" if n < order else "\n"))
        handle.write("\n\\end\\\n")


def find_kenlm_tool(name: str) -> str | None:
    """Path of a KenLM program (``lmplz``, ``build_binary``) on PATH, or None."""
    return shutil.which(name)


def build_lm(texts: str | os.PathLike | Iterable[str | os.PathLike], output: str | Path, *, order: int = 4,
             estimator: str = "auto", binary: bool = True, uppercase: bool = True,
             exclude: str | os.PathLike | Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Build an n-gram LM from text files: ``OUTPUT.arpa``, a unigram list, and a KenLM binary if possible.

    Args:
        texts: a text file or several, one sentence per line.
        output: output path; ``.arpa`` / ``.bin`` suffixes are replaced, other names get ``.arpa`` appended.
        order: n-gram order (1-6).
        estimator: ``"python"`` (our modified Kneser-Ney), ``"lmplz"`` (KenLM's program) or ``"auto"``
            (lmplz when on PATH).
        binary: also write ``OUTPUT.bin`` with KenLM's ``build_binary`` when it is on PATH.
        uppercase: upper-case the text (the CTC vocabularies here are upper case).
        exclude: text files of sentences to leave out of ``texts`` wherever they occur (compared word by word
            after the same case folding), e.g. the transcripts of a test set, so that the LM never saw them.

    Returns:
        The files written: the ARPA file first, then ``<binary>.unigrams.txt`` and the binary when built.

    Raises:
        InvalidOptionError: for a bad order or estimator; LanguageModelError: for missing input or a
        failing KenLM program.
    """
    if not 1 <= order <= 6:
        raise InvalidOptionError(f"order must be between 1 and 6, got {order}")
    if estimator not in ("auto", "python", "lmplz"):
        raise InvalidOptionError(f"estimator must be auto, python or lmplz, got {estimator!r}")
    texts = [Path(t) for t in _paths(texts)]
    out = Path(output)
    stem = out.with_suffix("") if out.suffix in (".arpa", ".bin") else out
    arpa = stem.with_name(stem.name + ".arpa")
    lmplz = find_kenlm_tool("lmplz")
    if estimator == "lmplz" and lmplz is None:
        raise LanguageModelError("estimator='lmplz' but KenLM's lmplz is not on PATH (see docs/decoding.md)")
    left_out = excluded(_paths(exclude), uppercase=uppercase)
    if estimator != "python" and lmplz is not None:
        _run_lmplz(lmplz, texts, arpa, order, uppercase, left_out)
    else:
        write_arpa(estimate_kneser_ney(read_sentences(texts, uppercase=uppercase, exclude=left_out), order), arpa)
    written = [arpa]
    build_binary = find_kenlm_tool("build_binary") if binary else None
    if build_binary is not None:
        bin_path = stem.with_name(stem.name + ".bin")
        _run([build_binary, str(arpa), str(bin_path)], "build_binary")
        from w2v2_onnx.lm_arpa import read_arpa_unigrams

        sidecar = bin_path.with_name(bin_path.name + ".unigrams.txt")
        sidecar.write_text("\n".join(sorted(read_arpa_unigrams(arpa))) + "\n", encoding="utf-8")
        written += [sidecar, bin_path]
    elif binary:
        logger.info("KenLM's build_binary is not on PATH: wrote ARPA only (%s)", arpa)
    return written


def _paths(value: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str | os.PathLike]:
    """One path or several, as a list (a bare string is one file name, not its characters)."""
    return [value] if isinstance(value, str | os.PathLike) else list(value)


def _run(command: list[str], name: str, stdin: bytes | None = None) -> bytes:
    result = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace")[-800:]
        raise LanguageModelError(f"{name} failed with exit status {result.returncode}: {tail}")
    return result.stdout


def _run_lmplz(lmplz: str, texts: list[Path], arpa: Path, order: int, uppercase: bool,
               exclude: Collection[tuple[str, ...]]) -> None:
    text = "\n".join(" ".join(words) for words in read_sentences(texts, uppercase=uppercase, exclude=exclude)) + "\n"
    arpa.write_bytes(_run([lmplz, "-o", str(order), "--discount_fallback", "-S", "20%"], "lmplz",
                          text.encode("utf-8")))
