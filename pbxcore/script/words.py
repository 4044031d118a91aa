"""Words of the text form: POSIX-shell splitting without expansion, and the quoting that
round-trips through it.  Pure."""

from __future__ import annotations

import re

_SAFE_WORD = re.compile(r"[\w@%+=:,./*#-]+", re.ASCII)
OPTION = re.compile(r"([a-z_][a-z0-9_]*)=(.*)", re.DOTALL)
"""A `name=value` option word."""


def quote_word(word: str, *, after_equals: bool = False) -> str:
    """Quote a word so that split_words() gives it back unchanged.

    after_equals: the word follows `name=`, where '#' does not start a comment (finish=#).
    """
    if _SAFE_WORD.fullmatch(word) and (after_equals or not word.startswith("#")):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def split_words(line: str) -> list[str]:
    """Split one line like a POSIX shell would, without any expansion.

    Unlike shlex, '#' starts a comment only at the start of a word, as in sh (`finish=#`).
    """
    words: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n or line[i] == "#":
            return words
        buf: list[str] = []
        while i < n and line[i] not in " \t":
            c = line[i]
            if c == "'":
                end = line.find("'", i + 1)
                if end < 0:
                    raise ValueError("unterminated single quote")
                buf.append(line[i + 1:end])
                i = end + 1
            elif c == '"':
                i += 1
                while True:
                    if i >= n:
                        raise ValueError("unterminated double quote")
                    c = line[i]
                    if c == '"':
                        i += 1
                        break
                    if c == "\\" and i + 1 < n and line[i + 1] in '\\"$`':
                        c, i = line[i + 1], i + 1
                    buf.append(c)
                    i += 1
            elif c == "\\":
                if i + 1 >= n:
                    raise ValueError("backslash at end of line")
                buf.append(line[i + 1])
                i += 2
            else:
                buf.append(c)
                i += 1
        words.append("".join(buf))
