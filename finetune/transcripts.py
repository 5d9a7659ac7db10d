"""Write the transcripts of a split's training part (or a held-out part), e.g. as language-model text.

Uses the same source specs and seeded splits as training, so a language model built from its output never
sees the text of held-out prompts::

    python -m w2v2_onnx_finetune.transcripts --seed 0 -o train.txt \\
        --data "../shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1" \\
        --data "../shared/data/fsdd:group=speaker,hold_out=theo"
    w2v2-onnx build-lm ../shared/data/text/sentences.txt train.txt -o lm
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from w2v2_onnx_finetune.data import manifest_parts
from w2v2_onnx_finetune.sources import parse_source

logger = logging.getLogger(__name__)


def part_transcripts(specs: Sequence[str], *, seed: int = 0, part: str = "train") -> list[str]:
    """Transcripts of the ``train`` or ``held-out`` part of each manifest source, in manifest order.

    Raises:
        DataError: a bad source spec or manifest.
    """
    texts: list[str] = []
    for text in specs:
        _, train, held = manifest_parts(parse_source(text), seed)
        texts.extend(u.text for u in (train if part == "train" else held))
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2v2_onnx_finetune.transcripts",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True, metavar="SOURCE",
                        help="same source specs as training (manifests)")
    parser.add_argument("--seed", type=int, default=0, help="the training run's seed (decides splits)")
    parser.add_argument("--part", choices=("train", "held-out"), default="train")
    parser.add_argument("-o", "--output", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    texts = part_transcripts(args.data, seed=args.seed, part=args.part)
    args.output.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    logger.info("wrote %d transcripts to %s", len(texts), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
