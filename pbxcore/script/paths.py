"""Where the file arguments of actions point: prompts under sounds/<language>/, scripts under
scripts/, never outside them.  Pure (PurePath arithmetic, no file system)."""

from __future__ import annotations

import re
from pathlib import PurePath, PurePosixPath

from pbxcore.script.actions import ActionError
from pbxcore.script.schema import PathError, check_relative_path

_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def resolve_sound(name: str, sounds_dir: PurePath, language: str) -> PurePath:
    """sounds_dir/language/name, with .wav added when name has no extension (lexical only)."""
    if not _LANGUAGE.fullmatch(language):
        raise ActionError(None, f"bad language {language!r}")
    try:
        check_relative_path(name)
    except PathError:
        raise ActionError(None, f"path must stay inside the sounds directory, got {name!r}") \
            from None
    rel = PurePosixPath(name)
    if not rel.suffix:
        rel = rel.with_name(rel.name + ".wav")
    return sounds_dir / language / rel


def resolve_script(name: str, scripts_dir: PurePath) -> PurePath:
    """scripts_dir/name for `goto` (lexical only; the runner reports a missing file)."""
    try:
        check_relative_path(name)
    except PathError:
        raise ActionError(None, f"path must stay inside the scripts directory, got {name!r}") \
            from None
    return scripts_dir / name
