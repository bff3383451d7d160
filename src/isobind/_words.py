"""Words of tool text for search and for comparing descriptions with names.

`tokenize` splits text into lowercase Snowball stems, also at snake_case,
camelCase and dashes, and drops stop words.
"""

from __future__ import annotations

import functools
import re

import snowballstemmer

__all__ = ["stem_word", "tokenize"]

# Words that carry no meaning in a query such as "how do I get the time in Tokyo".
_STOP_WORDS = frozenset(
    {
        "a",
        "about",
        "all",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "give",
        "how",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "please",
        "show",
        "some",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "this",
        "to",
        "using",
        "want",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
    }
)

_WORD = re.compile(r"[^\W_]+")
# Boundaries inside a word: `readTextFile` -> read Text File, `HTTPServer` -> HTTP Server,
# `utf8` -> utf 8.
_CAMEL_BOUNDARY = re.compile(
    r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])"
)
_STEMMER = snowballstemmer.stemmer("english")


def tokenize(text: str) -> list[str]:
    """Split `text` into lowercase stemmed words, also at snake_case, camelCase and dashes.

    Stop words are dropped, so `"Get the current time"` gives `["get", "current", "time"]`.
    """
    words: list[str] = []
    for run in _WORD.findall(text):
        for part in _CAMEL_BOUNDARY.split(run):
            word = part.lower()
            if word and word not in _STOP_WORDS:
                words.append(word)
    return [stem_word(word) for word in words]


@functools.lru_cache(maxsize=65_536)
def stem_word(word: str) -> str:
    # The Snowball stemmer is pure Python and tool text repeats few words, so
    # caching makes indexing 2,500 tools several times faster.
    result: str = _STEMMER.stemWord(word)
    return result
