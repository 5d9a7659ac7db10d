"""N-gram LM: ARPA queries with back-off, modified Kneser-Ney against lmplz, and the build-lm command."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

from w2v2_onnx import cli
from w2v2_onnx.errors import InvalidOptionError, LanguageModelError
from w2v2_onnx.lm import HotwordScorer, LanguageModelScorer, load_ngram_model
from w2v2_onnx.lm_arpa import ArpaModel, iter_arpa, read_arpa_unigrams
from w2v2_onnx.lm_build import _log10_prob, build_lm, estimate_kneser_ney, read_sentences

DATA = Path(__file__).parent / "data"
SENTENCES = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "sentences.txt"
if not SENTENCES.is_file():
    SENTENCES = Path("/work/shared/data/text/sentences.txt")

ARPA = """\\data\\
ngram 1=5
ngram 2=3
ngram 3=1

\\1-grams:
-1.5\t<unk>\t0
0\t<s>\t-0.5
-1.0\t</s>\t0
-0.8\tA\t-0.3
-0.9\tB\t-0.25

\\2-grams:
-0.4\t<s> A\t-0.1
-0.3\tA B\t-0.2
-0.2\tB </s>

\\3-grams:
-0.05\t<s> A B

\\end\\
"""

# lmplz -o 4 on the first 5,000 lines of shared/data/text/sentences.txt (KenLM 0.3.0 source build)
LMPLZ_O4_COUNTS = {1: 10901, 2: 40013, 3: 51692, 4: 49517}
LMPLZ_O4_VALUES = [
    ("-4.64544", "<unk>", "0"), ("0", "<s>", "-0.64399105"), ("-1.1151413", "</s>", "0"),
    ("-1.6940135", "THE", "-0.20809181"), ("-4.3500633", "FEATHERED", "-0.069660895"),
    ("-1.4309155", "HANG GLIDER", "-0.021961251"), ("-0.7929424", "ROOTED IN", "-0.021961251"),
    ("-1.1201191", "THE INFANT WAS", "-0.0066763097"),
    ("-0.7207334", "HIGH OCTANE MARKETING", "-0.0066763097"),
    ("-0.64966166", "IN THE BITTERNESS OF", None), ("-2.7422848", "<s> HE WAS BANISHED", None),
    ("-0.5788461", "COMMON RECEPTION COUNTENANCED </s>", None), ("-1.4677291", "AGAIN THE SECOND TIME", None),
]


@pytest.fixture()
def arpa(tmp_path: Path) -> Path:
    path = tmp_path / "small.arpa"
    path.write_text(ARPA)
    return path


def test_arpa_scores_back_off_like_kenlm(arpa: Path) -> None:
    model = ArpaModel(arpa)
    assert model.order == 3 and "A" in model and "C" not in model
    logp, state = model.score(model.begin_state(), "A")
    assert logp == pytest.approx(-0.4) and state == ("<s>", "A")
    assert model.score(state, "B")[0] == pytest.approx(-0.05)  # trigram found
    assert model.score(("A", "B"), "B")[0] == pytest.approx(-0.2 + -0.25 + -0.9)  # bo(A B) + bo(B) + p(B)
    assert model.score((), "C")[0] == pytest.approx(-1.5)  # unknown word -> <unk>
    assert model.score(("B",), "A")[0] == pytest.approx(-0.25 + -0.8)


def test_kenlm_loads_an_arpa_file_without_a_progress_bar(arpa: Path, capfd: pytest.CaptureFixture) -> None:
    pytest.importorskip("kenlm", reason="the lm extra (kenlm) is not installed")
    capfd.readouterr()
    assert load_ngram_model(arpa, backend="kenlm").order == 3
    assert "----5---10" not in capfd.readouterr().err  # KenLM's bar, written by C++ straight to stderr


def test_kenlm_backend_matches_python_backend(arpa: Path) -> None:
    pytest.importorskip("kenlm", reason="the lm extra (kenlm) is not installed")
    python, kenlm = load_ngram_model(arpa, backend="python"), load_ngram_model(arpa, backend="kenlm")
    for context, word in [((), "A"), (("A",), "B"), (("A", "B"), "B"), (("B",), "</s>"), ((), "C")]:
        ks = kenlm.null_state()
        for w in context:
            ks = kenlm.score(ks, w)[1]
        ps = python.null_state()
        for w in context:
            ps = python.score(ps, w)[1]
        assert kenlm.score(ks, word)[0] == pytest.approx(python.score(ps, word)[0], abs=1e-6)


def test_scorer_follows_pyctcdecode_rules(arpa: Path) -> None:
    scorer = LanguageModelScorer(ArpaModel(arpa), read_arpa_unigrams(arpa), alpha=0.5, beta=1.5)
    score, _ = scorer.score(scorer.start_state(), "A")
    assert score == pytest.approx(0.5 * -0.4 * math.log(10) + 1.5)
    unk, _ = scorer.score(scorer.start_state(), "C")
    assert unk == pytest.approx(0.5 * (-1.5 + -0.5 - 10.0) * math.log(10) + 1.5)  # bo(<s>) + p(<unk>) - 10
    assert scorer.score_partial_word("A") == 0.0
    assert scorer.score_partial_word("Q") == -10.0
    assert scorer.score_partial_word("QQQQQQQQQ") == pytest.approx(-10.0 * 9 / 6)
    hot = HotwordScorer(["NEW YORK", "NEWT"], 10.0)
    assert hot.score("I LOVE NEW YORK") == 20.0 and hot.score("NEWYORK") == 0.0
    assert hot.score_partial_word("NE") == pytest.approx(10.0 * 2 / 3)  # shortest hotword: NEW
    assert "NEWT" in hot and "X" not in hot


def test_estimator_matches_lmplz_on_a_tiny_corpus_with_fallback_discounts() -> None:
    expected = {tuple(f[1].split()): (float(f[0]), float(f[2]) if len(f) > 2 else 0.0)
                for _, f in iter_arpa(DATA / "lmplz_tiny_corpus_o3.arpa")}
    model = {}
    for level in estimate_kneser_ney(read_sentences([DATA / "tiny_corpus.txt"]), 3):
        model.update(level)
    assert model.keys() == expected.keys()
    for gram, (logp, backoff) in expected.items():
        assert model[gram][0] == pytest.approx(logp, abs=1e-6), gram
        assert model[gram][1] == pytest.approx(backoff, abs=1e-6), gram


@pytest.mark.skipif(not SENTENCES.is_file(), reason="shared/data/text/sentences.txt is not present")
def test_estimator_matches_lmplz_on_real_text() -> None:
    lines = SENTENCES.read_text(encoding="utf-8").splitlines()[:5000]
    levels = estimate_kneser_ney((line.split() for line in lines), 4)
    assert {n: len(level) for n, level in enumerate(levels, start=1)} == LMPLZ_O4_COUNTS
    for logp, words, backoff in LMPLZ_O4_VALUES:
        gram = tuple(words.split())
        got = levels[len(gram) - 1][gram]
        assert got[0] == pytest.approx(float(logp), abs=2e-6), words
        if backoff is not None:
            assert got[1] == pytest.approx(float(backoff), abs=2e-6), words


def test_build_lm_command_writes_a_loadable_arpa(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = tmp_path / "text.txt"
    text.write_text((DATA / "tiny_corpus.txt").read_text().lower())
    status = cli.main(["build-lm", str(text), "-o", str(tmp_path / "out.arpa"), "--order", "2",
                       "--estimator", "python", "--no-binary"])
    assert status == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "out.arpa")]
    model = ArpaModel(tmp_path / "out.arpa")
    assert model.order == 2 and "CAT" in model  # upper-cased by default
    assert cli.main(["build-lm", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "x")]) == 2


def test_build_lm_leaves_out_excluded_sentences(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = tmp_path / "text.txt"
    text.write_text("the cat sat\nthe dog ran\na kite flew\nthe cat sat\n")
    test_set = tmp_path / "test.txt"
    test_set.write_text("THE CAT SAT\n")
    assert cli.main(["build-lm", str(text), "-o", str(tmp_path / "lm"), "--order", "2", "--estimator", "python",
                     "--no-binary", "--exclude", str(test_set)]) == 0
    model = ArpaModel(tmp_path / "lm.arpa")
    assert "CAT" not in model and "SAT" not in model and "DOG" in model and "KITE" in model
    build_lm(str(text), tmp_path / "one", order=2, estimator="python", binary=False, exclude=str(test_set))
    assert "CAT" not in ArpaModel(tmp_path / "one.arpa")  # single paths as strings, not their characters
    assert cli.main(["build-lm", str(text), "-o", str(tmp_path / "x"), "--exclude", str(tmp_path / "none.txt")]) == 2
    assert "none.txt" in capsys.readouterr().err


def test_build_lm_rejects_bad_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError):
        build_lm([DATA / "tiny_corpus.txt"], tmp_path / "x", order=0)
    with pytest.raises(InvalidOptionError):
        build_lm([DATA / "tiny_corpus.txt"], tmp_path / "x", estimator="srilm")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(LanguageModelError):
        build_lm([empty], tmp_path / "x", estimator="python")


def test_build_lm_uses_kenlm_programs_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # stand-ins for lmplz (records its input and arguments, prints a fixed ARPA) and build_binary (copies)
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "lmplz").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args.txt\ncat > {tmp_path}/stdin.txt\n"
                                 f"cat {DATA / 'lmplz_tiny_corpus_o3.arpa'}\n")
    (tools / "build_binary").write_text("#!/bin/sh\ncp \"$1\" \"$2\"\n")
    for tool in tools.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{__import__('os').environ['PATH']}")
    text = tmp_path / "text.txt"
    text.write_text("the cat sat\n\nthe dog\nthe  dog sat\n")
    test_set = tmp_path / "test.txt"
    test_set.write_text("THE DOG SAT\n")
    written = build_lm([text], tmp_path / "lm.bin", order=3, exclude=[test_set])
    assert written == [tmp_path / "lm.arpa", tmp_path / "lm.bin.unigrams.txt", tmp_path / "lm.bin"]
    assert (tmp_path / "stdin.txt").read_text() == "THE CAT SAT\nTHE DOG\n"  # the test sentence left out
    assert (tmp_path / "args.txt").read_text().split()[:2] == ["-o", "3"]
    assert "KITE" in (tmp_path / "lm.bin.unigrams.txt").read_text().split()
    assert "--prune" not in (tmp_path / "args.txt").read_text().split()
    build_lm([text], tmp_path / "pruned", order=3, min_count=3)
    assert (tmp_path / "args.txt").read_text().split()[-3:] == ["--prune", "0", "2"]  # counts <= 2 pruned
    with pytest.raises(LanguageModelError):
        monkeypatch.setenv("PATH", "/nonexistent")
        build_lm([text], tmp_path / "x", estimator="lmplz")


def test_build_lm_refuses_non_utf8_text_and_unigram_order(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("CAF\xc9 NOIR\n".encode("latin-1"))
    assert cli.main(["build-lm", str(latin1), "-o", str(tmp_path / "x")]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    with pytest.raises(LanguageModelError, match="not UTF-8"):
        list(read_sentences([latin1]))
    good = tmp_path / "good.txt"
    good.write_text("THE CAT SAT\n", encoding="utf-8")
    with pytest.raises(SystemExit):  # KenLM loads no unigram-only model: the command asks for 2-6
        cli.main(["build-lm", str(good), "-o", str(tmp_path / "y"), "--order", "1"])
    assert "invalid choice: 1" in capsys.readouterr().err


def test_hotword_bonus_counted_word_by_word_equals_the_text_score() -> None:
    """The C beam loop adds hotword bonuses word by word; that must equal scoring the whole text."""
    from w2v2_onnx.lm import HotwordScorer

    scorer = HotwordScorer(["RED BALL", "KITE", "KITES"], 2.5)
    for text in ["", "KITE", "A RED KITE", "KITES AND KITE RED BALL", "REDBALL KIT", "BALL BALL RED"]:
        count = sum(scorer.is_word(word) for word in text.split())
        assert scorer.score_count(count) == scorer.score(text)
    assert HotwordScorer([], 2.5).score_count(3) == 0.0 == HotwordScorer([], 2.5).score("KITE")


def _total_probability(model: list[dict], context: tuple[str, ...]) -> float:
    """Sum over the vocabulary (words, </s>, <unk>) of P(word | context), queried with back-off."""
    vocabulary = [gram[0] for gram in model[0] if gram[0] != "<s>"]
    return sum(10.0 ** _log10_prob(model, context + (word,)) for word in vocabulary)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_pruned_model_keeps_each_context_a_distribution(order: int) -> None:
    rng = random.Random(order)
    words = "A B C D E F G H".split()
    corpus = [[rng.choice(words[:rng.randint(2, 8)]) for _ in range(rng.randint(1, 7))] for _ in range(300)]
    full = estimate_kneser_ney(iter(corpus), order)
    assert estimate_kneser_ney(iter(corpus), order, min_count=1) == full
    for min_count in (2, 3):
        pruned = estimate_kneser_ney(iter(corpus), order, min_count=min_count)
        assert pruned[0] == {g: (p, pruned[0][g][1]) for g, (p, _) in full[0].items()}  # unigram probs kept
        assert all(len(p) < len(f) for p, f in zip(pruned[1:], full[1:], strict=True))  # something pruned
        for n, level in enumerate(pruned[1:], start=2):
            for gram, (logp, _) in level.items():  # kept n-grams keep their probability, prefixes are kept
                assert logp == full[n - 1][gram][0] and gram[:-1] in pruned[n - 2] and gram[1:] in pruned[n - 2]
        contexts = [()] + [gram for level in pruned[:-1] for gram in level if gram[-1] != "</s>"]
        for context in contexts:
            assert _total_probability(pruned, context) == pytest.approx(1.0, abs=1e-9), context
        # a dropped n-gram is now scored through the (renormalised) back-off, and differs from before
        dropped = [g for g in full[-1] if g not in pruned[-1]]
        assert dropped and any(abs(_log10_prob(pruned, g) - full[-1][g][0]) > 1e-6 for g in dropped)


def test_build_lm_min_count_writes_a_smaller_model_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = tmp_path / "text.txt"
    rng = random.Random(0)
    text.write_text("\n".join(" ".join(rng.choice("THE A CAT DOG SAT RAN ON MAT".split()) for _ in range(6))
                              for _ in range(400)) + "\n")
    sizes = {}
    for min_count in (1, 3):
        out = tmp_path / f"lm{min_count}"
        assert cli.main(["build-lm", str(text), "-o", str(out), "--order", "3", "--estimator", "python",
                     "--no-binary", "--min-count", str(min_count)]) == 0
        arpa = out.with_suffix(".arpa")
        sizes[min_count] = arpa.stat().st_size
        model = load_ngram_model(arpa, backend="python")
        assert model.order == 3
    assert sizes[3] < sizes[1]
    assert cli.main(["build-lm", str(text), "-o", str(tmp_path / "bad"), "--min-count", "0"]) == 2
    assert "min_count must be a positive integer" in capsys.readouterr().err


def test_without_kenlm_arpa_files_load_and_a_non_arpa_file_is_named(arpa: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from w2v2_onnx.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "kenlm", None)  # "import kenlm" now raises ImportError
    assert isinstance(load_ngram_model(arpa), ArpaModel)
    notes = tmp_path / "notes.arpa"
    notes.write_text("these are not n-grams\n")
    with pytest.raises(MissingDependencyError, match=r"notes\.arpa has no ARPA .* header, so reading it as a KenLM "
                                                     r"binary language model needs the package 'kenlm'"):
        load_ngram_model(notes)
    with pytest.raises(MissingDependencyError, match="pip install 'w2v2-onnx\\[lm\\]'"):
        load_ngram_model(arpa, backend="kenlm")
