"""Text -> a safe name for files, folders and ids: the one slug function."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Latin letters that NFKD does not split into a base letter and an accent.
_LATIN_LETTERS = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss",
                                "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "Th", "ð": "d"})


def slug(text: str, *, sep: str = "-", max_chars: int = 60, fold: bool = False, fallback: str = "",
         trim_cut: bool = True) -> str:
    """Lowercase ASCII letters and digits, runs of anything else as one `sep`, at most `max_chars`.

    fold: accents are folded (Café -> cafe), and when letters cannot be folded (CJK, emoji) or nothing
    is left, a short hash of the original is appended so distinct titles keep distinct names.
    Without it other letters are dropped and an empty result becomes `fallback`.
    trim_cut=False keeps a `sep` that the cut leaves at the end; corpus job ids were made that way
    and their cache keys and splits hash them, so they must not change.
    """
    original = str(text)
    text, lost = original, False
    if fold:
        folded = unicodedata.normalize("NFKD", original.translate(_LATIN_LETTERS))
        lost = any(unicodedata.category(c)[0] in "LN" for c in folded if not c.isascii())
        text = folded.encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9]+", sep, text.lower()).strip(sep)
    if fold and (lost or not name):
        digest = hashlib.sha1(original.encode("utf-8", "surrogatepass")).hexdigest()[:6]
        name = f"{name[: max_chars - 7]}{sep}{digest}".strip(sep)
    name = name[:max_chars]
    if trim_cut:
        name = name.strip(sep)
    return name or fallback
