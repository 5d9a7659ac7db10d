"""Transcript normalisation: upper case letters, apostrophes and single spaces."""

from __future__ import annotations

import re
import unicodedata

_NOT_ALLOWED = re.compile(r"[^A-Z' ]+")
_SPACES = re.compile(r" +")


def normalize_transcript(text: str) -> str:
    """Normalise a transcript the way every training and evaluation text is normalised.

    Accents are folded to their base letter (``café`` -> ``CAFE``), text is upper-cased, every
    character other than ``A``-``Z``, the apostrophe and the space becomes a space, runs of spaces
    collapse to one and the ends are stripped. Apostrophes that do not sit between letters (quotes)
    are removed.

    Args:
        text: any transcript.

    Returns:
        The normalised transcript; ``""`` when nothing speakable is left.
    """
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    folded = folded.replace("\u2019", "'").replace("\u2018", "'").upper()
    folded = _NOT_ALLOWED.sub(" ", folded)
    words = []
    for word in folded.split(" "):
        word = word.strip("'")
        if word:
            words.append(word)
    return _SPACES.sub(" ", " ".join(words)).strip()
