"""DataSync filters (FilterType SIMPLE_PATTERN): parsing, validation and matching.

A filter value is patterns separated by `|`. Patterns are paths from the location root (`/dir`,
`/dir/` and the dir's contents alike) where `*` matches any run of characters, `/` included, so
`*/.snapshot` matches a `.snapshot` folder at any depth. `\\` escapes `*`, `|` and itself.
An include pattern may carry a wildcard only as its last character (`/projects/2024*`).
Excludes win over includes. A folder matched by a pattern takes its whole subtree with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

WILDCARD = "*"


class FilterRule(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    FilterType: Literal["SIMPLE_PATTERN"] = "SIMPLE_PATTERN"
    Value: str = Field(min_length=1, max_length=102400, pattern=r"^[^\x00]+$")


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    literal: str  # the pattern without its trailing wildcard, unescaped (includes only)
    trailing_wildcard: bool
    regex: str


def parse_patterns(value: str, field: str, *, include: bool) -> list[Pattern]:
    """Split a filter value into patterns; ValueError names `field` and says what to fix."""
    patterns: list[Pattern] = []
    for tokens, text in _split(value, field):
        if not tokens:
            raise ValueError(
                f"{field}: empty pattern in {value!r}; separate patterns with a single '|' "
                "and do not start or end the value with '|'."
            )
        if tokens[0] is not WILDCARD and not tokens[0].startswith("/"):
            raise ValueError(
                f"{field}: pattern {text!r} must start with '/' (a path from the location "
                "root, such as /folder) or with '*' (such as *.tmp)."
            )
        # "/dir/" means the same as "/dir".
        if len(tokens) > 1 or tokens[0] is not WILDCARD:
            last = tokens[-1]
            if last is not WILDCARD and len(last) > 1 and last.endswith("/"):
                tokens[-1] = last.rstrip("/") or "/"
        wildcards = [i for i, token in enumerate(tokens) if token is WILDCARD]
        if include and any(i != len(tokens) - 1 for i in wildcards):
            raise ValueError(
                f"{field}: include pattern {text!r} has a wildcard before its end; include "
                "patterns may use '*' only as their last character (such as /photos/2024*)."
            )
        trailing = bool(wildcards) and wildcards[-1] == len(tokens) - 1
        literal = "".join(t for t in tokens if t is not WILDCARD)
        regex = "".join(".*" if t is WILDCARD else re.escape(t) for t in tokens)
        patterns.append(Pattern(text, literal, trailing, regex))
    return patterns


def _split(value: str, field: str) -> list[tuple[list[str], str]]:
    """Tokens of each pattern: literal strings and the WILDCARD marker."""
    result: list[tuple[list[str], str]] = []
    tokens: list[str] = []
    literal: list[str] = []
    raw: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError(f"{field}: {value!r} ends with a lone '\\'; write '\\\\'.")
            literal.append(escaped)
            raw.append(char + escaped)
            continue
        if char == "|":
            if literal:
                tokens.append("".join(literal))
            result.append((tokens, "".join(raw)))
            tokens, literal, raw = [], [], []
            continue
        raw.append(char)
        if char == "*":
            if literal:
                tokens.append("".join(literal))
                literal = []
            if not tokens or tokens[-1] is not WILDCARD:
                tokens.append(WILDCARD)
        else:
            literal.append(char)
    if literal:
        tokens.append("".join(literal))
    result.append((tokens, "".join(raw)))
    return result


def check_filters(rules: list[FilterRule], field: str, *, include: bool) -> list[Pattern]:
    if len(rules) > 1:
        raise ValueError(
            f"{field}: give at most one filter rule; put several patterns in its Value, "
            "separated by '|'."
        )
    return [
        pattern
        for i, rule in enumerate(rules)
        for pattern in parse_patterns(rule.Value, f"{field}[{i}].Value", include=include)
    ]


class Scope(Enum):
    """Where a path stands with respect to the filters."""

    OUT = 0  # not transferred, and nothing below it is
    IN = 1  # transferred with everything below it (unless excluded)
    ON_THE_WAY = 2  # a folder above an included path: kept, its children decided one by one


class PathFilter:
    """Decides, path by path during a listing, what a transfer takes."""

    def __init__(self, includes: list[FilterRule], excludes: list[FilterRule]) -> None:
        self._includes = check_filters(includes, "Includes", include=True)
        excluded = check_filters(excludes, "Excludes", include=False)
        self._exclude = (
            re.compile("|".join(f"(?:{p.regex})" for p in excluded), re.DOTALL)
            if excluded
            else None
        )
        self.selects_all = not self._includes and self._exclude is None

    def scope(self, path: str, is_dir: bool, parent: Scope) -> Scope:
        """`path` is relative to the location root ("" for the root, "a/b" below it)."""
        absolute = "/" + path
        if self._exclude is not None and path and self._exclude.fullmatch(absolute):
            return Scope.OUT
        if not self._includes or parent is Scope.IN:
            return Scope.IN
        for pattern in self._includes:
            if absolute == pattern.literal or (
                pattern.trailing_wildcard and absolute.startswith(pattern.literal)
            ):
                return Scope.IN
        if is_dir:
            below = absolute.rstrip("/") + "/"
            if any(p.literal.startswith(below) for p in self._includes):
                return Scope.ON_THE_WAY
        return Scope.OUT
