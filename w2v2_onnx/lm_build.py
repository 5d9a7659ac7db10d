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


def estimate_kneser_ney(sentences: Iterable[list[str]], order: int,
                        min_count: int = 1) -> list[dict[Ngram, tuple[float, float]]]:
    """Estimate an interpolated modified Kneser-Ney model.

    Args:
        sentences: word lists, without ``<s>`` / ``</s>``.
        order: the n-gram order (>= 1).
        min_count: n-grams of order 2 and up seen fewer times than this are pruned after estimation (their
            probability then comes from the back-off, whose weights are renormalised; see
            :func:`prune_model`). 1 keeps every n-gram.

    Returns:
        For each order 1..N, a dict from n-gram to ``(log10 probability, log10 back-off)``, as in ARPA.

    Raises:
        InvalidOptionError: if ``order`` < 1 or ``min_count`` < 1; LanguageModelError: if there are no words.
    """
    if order < 1:
        raise InvalidOptionError(f"order must be at least 1, got {order}")
    if min_count < 1:
        raise InvalidOptionError(f"min_count must be at least 1, got {min_count}")
    top: Counter = Counter()
    bos_counts: Counter = Counter()  # raw counts of lower-order n-grams that start with <s>
    raw: list[Counter] = [Counter() for _ in range(order + 1)]  # raw counts of orders 2..N-1, for pruning
    for words in sentences:
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                gram = tuple(padded[i:i + n])
                if n == order:
                    top[gram] += 1
                else:
                    if i == 0:
                        bos_counts[gram] += 1
                    if min_count > 1 and n > 1:
                        raw[n][gram] += 1
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
    if min_count > 1 and order > 1:
        raw[order] = top
        model = prune_model(model, [{g for g, c in raw[n].items() if c >= min_count} for n in range(2, order + 1)])
    return model


def _log10_prob(model: list[dict[Ngram, tuple[float, float]]], gram: Ngram) -> float:
    """log10 P(last word | the words before it) in an ARPA-style model, backing off as a query does."""
    backoff = 0.0
    while len(gram) > 1:
        entry = model[len(gram) - 1].get(gram)
        if entry is not None:
            return backoff + entry[0]
        context = model[len(gram) - 2].get(gram[:-1])
        if context is not None:
            backoff += context[1]
        gram = gram[1:]
    return backoff + model[0].get(gram, model[0].get((UNK,), (0.0, 0.0)))[0]


def prune_model(model: list[dict[Ngram, tuple[float, float]]],
                kept: list[Collection[Ngram]]) -> list[dict[Ngram, tuple[float, float]]]:
    """Keep only the listed n-grams of orders 2 and up and renormalise the back-off weights.

    The kept probabilities are unchanged; a dropped n-gram's probability comes from the back-off. Each
    context's back-off weight becomes ``(1 - sum of its kept probabilities) / (1 - sum of what the shorter
    context gives those words)``, so every context's distribution still sums to one (SRILM's renormalisation
    after pruning). ``kept`` must be closed under prefixes and suffixes (true of count thresholds on raw
    counts: a part of an n-gram is seen at least as often as the n-gram).

    Args:
        model: per order, n-gram -> (log10 probability, log10 back-off), from :func:`estimate_kneser_ney`.
        kept: for orders 2..N, the n-grams to keep.

    Returns:
        The pruned model (new dicts; unigrams kept whole).
    """
    order = len(model)
    pruned = [dict(model[0])] + [{g: model[n][g] for g in kept[n - 1] if g in model[n]} for n in range(1, order)]
    for n in range(1, order):  # contexts of order n (their continuations are at order n + 1), low to high
        kept_mass: dict[Ngram, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for gram, (logp, _) in pruned[n].items():
            sums = kept_mass[gram[:-1]]
            sums[0] += 10.0 ** logp
            sums[1] += 10.0 ** _log10_prob(pruned, gram[1:])
        level = pruned[n - 1]
        for context, (logp, _) in level.items():
            if context not in kept_mass:  # no continuation left: the shorter context gives every word
                level[context] = (logp, 0.0)
                continue
            numerator, denominator = 1.0 - kept_mass[context][0], 1.0 - kept_mass[context][1]
            backoff = numerator / denominator if numerator > 0 and denominator > 0 else 1.0
            level[context] = (logp, math.log10(backoff))
    return pruned


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
             exclude: str | os.PathLike | Iterable[str | os.PathLike] = (), min_count: int = 1) -> list[Path]:
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
        min_count: prune n-grams of order 2 and up seen fewer times (lmplz: ``--prune 0 MIN_COUNT-1``); 1
            keeps all. A 3-gram with ``min_count=3`` from ``sentences.txt`` is 1.2 MB gzipped against 49 MB for
            the full 4-gram binary, and decodes the bundled model's held-out sets as well (docs/decoding.md).

    Returns:
        The files written: the ARPA file first, then ``<binary>.unigrams.txt`` and the binary when built.

    Raises:
        InvalidOptionError: for a bad order or estimator; LanguageModelError: for missing input or a
        failing KenLM program.
    """
    if not 1 <= order <= 6:
        raise InvalidOptionError(f"order must be between 1 and 6, got {order}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise InvalidOptionError(f"min_count must be a positive integer, got {min_count!r}")
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
        _run_lmplz(lmplz, texts, arpa, order, uppercase, left_out, min_count)
    else:
        sentences = read_sentences(texts, uppercase=uppercase, exclude=left_out)
        write_arpa(estimate_kneser_ney(sentences, order, min_count=min_count), arpa)
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
               exclude: Collection[tuple[str, ...]], min_count: int = 1) -> None:
    text = "\n".join(" ".join(words) for words in read_sentences(texts, uppercase=uppercase, exclude=exclude)) + "\n"
    prune = ["--prune", "0", str(min_count - 1)] if min_count > 1 and order > 1 else []
    arpa.write_bytes(_run([lmplz, "-o", str(order), "--discount_fallback", "-S", "20%", *prune], "lmplz",
                          text.encode("utf-8")))
