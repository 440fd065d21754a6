"""Small text tools shared by the parser, the chunker and the answer builder.

Sentence splitting here returns character spans rather than strings, so that
every passage and every answer sentence can be traced back to the exact place
in the cleaned FAQ text it came from.
"""

from __future__ import annotations

import re
import unicodedata

# Invisible or odd spaces that scraped pages carry; all become a plain space.
_ODD_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000\ufeff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Invisible marks that reorder or hide text (bidirectional overrides and
# isolates); they are dropped without leaving a space.
_BIDI_MARKS = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_RUNS_OF_SPACE = re.compile(r"\s+")

# A sentence ends at . ! ? (or their full-width forms) followed by space.
_SENTENCE_END = re.compile(r"[.!?。！？]+[\"'”’)\]]*(?=\s)")
# List markers such as "2) " or "Step3:" also start a new unit, because the
# FAQ runs whole numbered lists together without full stops.
_LIST_MARKER = re.compile(
    r"(?<=\s)(?=(?:\d{1,2}\)|\d{1,2}\.(?=\s[^\W\d_])|[①-⑳]|Step\s?\d+\s?[:.])\s?\S)"
)
# Words after which a full stop does not end a sentence.
# "1." and "V." open list items; "18-65." still ends a sentence.
_NO_BREAK_AFTER = re.compile(
    r"[\s(\[:;,](?:e\.g|i\.e|ie|etc|vs|mr|mrs|dr|st|www|[a-z]|[ivx]{1,4}|\d{1,2})$",
    re.IGNORECASE,
)
# "No." abbreviates "number" only when a number follows; otherwise the word
# "no" ends its sentence ("The answer is no. You cannot apply.").
_NUMBER_SIGN = re.compile(r"[\s(\[:;,]no$", re.IGNORECASE)
_DIGIT_NEXT = re.compile(r"\s*\d")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_DIGITS = re.compile(r"\d+")


def clean(text: str) -> str:
    """Return `text` with control characters dropped and spaces collapsed.

    Args:
        text: Raw text from a corpus file or a user.

    Returns:
        One line of text, stripped, with every run of whitespace (including
        no-break and zero-width spaces) turned into a single space.
    """
    text = unicodedata.normalize("NFC", text)
    text = _BIDI_MARKS.sub("", text)
    text = _ODD_SPACES.sub(" ", text)
    text = _CONTROL.sub(" ", text)
    return _RUNS_OF_SPACE.sub(" ", text).strip()


def sentence_spans(
    text: str, start: int = 0, end: int | None = None
) -> list[tuple[int, int]]:
    """Split `text[start:end]` into sentence spans.

    Args:
        text: Cleaned text (see `clean`).
        start: Offset where splitting begins. Defaults to 0.
        end: Offset where it stops. Defaults to the end of `text`.

    Returns:
        `(start, end)` pairs that cover the range without gaps other than the
        single spaces between sentences; each span is stripped of spaces.
    """
    end = len(text) if end is None else end
    cuts = {start, end}
    for match in _SENTENCE_END.finditer(text, start, end):
        if match.group().startswith(".") and _abbreviation(text, start, match):
            continue
        cuts.add(match.end())
    for match in _LIST_MARKER.finditer(text, start, end):
        cuts.add(match.start())
    return _spans_between(text, sorted(cuts))


def _abbreviation(text: str, start: int, match: re.Match) -> bool:
    """Whether the full stop of `match` ends an abbreviation, not a sentence."""
    before = " " + text[max(start, match.start() - 12) : match.start()]
    if _NUMBER_SIGN.search(before):
        return bool(_DIGIT_NEXT.match(text, match.end()))
    return bool(_NO_BREAK_AFTER.search(before))


def _spans_between(text: str, cuts: list[int]) -> list[tuple[int, int]]:
    spans = []
    for left, right in zip(cuts, cuts[1:]):
        # A unit never starts with the comma or semicolon of the last one.
        while left < right and (text[left].isspace() or text[left] in ",;"):
            left += 1
        while right > left and text[right - 1].isspace():
            right -= 1
        if right > left:
            spans.append((left, right))
    return spans


# Markup a user may paste around a question; none of it is asked.
_SCRIPT_OR_STYLE = re.compile(
    r"<(script|style)\b[^>]*>.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL
)
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+", re.IGNORECASE)


def strip_markup(text: str) -> str:
    """`text` without HTML tags, script bodies, link targets and URLs; the
    words a reader sees stay. Only for searching: replies show what the
    user typed, escaped."""
    text = _SCRIPT_OR_STYLE.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = _MARKDOWN_LINK.sub(r" \1 ", text)
    text = _URL.sub(" ", text)
    return _RUNS_OF_SPACE.sub(" ", text).strip()


def words(text: str) -> list[str]:
    """Return the lower-cased words of `text` (letters and digits only)."""
    return _WORD.findall(text.lower())


def fold(text: str) -> str:
    """Return a comparison key: lower-case words joined by single spaces."""
    return " ".join(words(text))


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    """Tell whether two sentences say the same thing in nearly the same words.

    Numbers must match exactly, since "1 month" and "2 months" differ in
    what matters even when every other word is shared.

    Args:
        a: One sentence.
        b: The other sentence.
        threshold: Least Jaccard overlap of the two word sets. Defaults to 0.8.

    Returns:
        True when both the numbers and most of the words agree.
    """
    if _DIGITS.findall(a) != _DIGITS.findall(b):
        return False
    set_a, set_b = set(words(a)), set(words(b))
    if not set_a or not set_b:
        return set_a == set_b
    return len(set_a & set_b) / len(set_a | set_b) >= threshold


def is_shouting(text: str) -> bool:
    """Tell whether `text` is written mostly in capital letters."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 12:
        return False
    upper = sum(1 for c in letters if c.isupper())
    return upper / len(letters) > 0.8


# The label that opens the answer of a nested "Q1: ... A: ..." pair.
_ANSWER_LABEL = re.compile(r"^\s*A\d*\s*[:：]\s*(?=\S)")


def for_display(sentence: str) -> str:
    """Return a sentence as it should be shown to a reader.

    ALL-CAPS text is shown in sentence case, an all-lower-case sentence
    gets a capital first letter, and the "A:" label of a nested answer is
    left off; the words themselves never change.
    """
    sentence = _ANSWER_LABEL.sub("", sentence, count=1)
    if is_shouting(sentence):
        sentence = sentence.lower()
    for i, char in enumerate(sentence):
        if char.isalpha():
            return sentence[:i] + char.upper() + sentence[i + 1 :]
    return sentence
