"""Parameter values as the AWS CLI takes them: JSON, `file://PATH`, or shorthand syntax.

Shorthand: `Key=Value,Key2=Value2`; nested `Key={A=1,B=2}`; lists `Key=[a,b]`; values in double
or single quotes keep commas and brackets. As in the AWS CLI, a comma that is not followed by
`Name=` belongs to the value before it, so `Value=/a,b|/c` is one value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_KEY = re.compile(r"\s*([A-Za-z0-9_.\-:]+)\s*=")


class ShorthandError(ValueError):
    pass


def parse_value(text: str) -> Any:
    if text.startswith("file://"):
        try:
            text = Path(text.removeprefix("file://")).read_text()
        except OSError as error:
            raise ShorthandError(f"cannot read {text}: {error.strerror}") from None
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as error:
            raise ShorthandError(f"invalid JSON: {error}") from None
    return parse_shorthand(text)


def parse_shorthand(text: str) -> dict[str, Any]:
    parser = _Parser(text)
    result = parser.structure(end="")
    if parser.position != len(text):
        parser.fail("unexpected text")
    return result


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def fail(self, problem: str) -> None:
        raise ShorthandError(
            f"{problem} at character {self.position + 1} of {self.text!r}; expected "
            "Key=Value pairs separated by commas (or JSON)"
        )

    def structure(self, end: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while True:
            match = _KEY.match(self.text, self.position)
            if not match:
                self.fail("expected Key=")
                raise AssertionError  # fail() raises
            self.position = match.end()
            key = match.group(1)
            if key in result:
                self.fail(f"{key} given twice")
            result[key] = self.value(stop=",}" if end else ",")
            if self.position >= len(self.text) or self.text[self.position] == end:
                return result
            self.position += 1  # the comma

    def value(self, stop: str) -> Any:
        if self.position < len(self.text):
            char = self.text[self.position]
            if char == "{":
                self.position += 1
                inner = self.structure(end="}")
                self._expect("}")
                return inner
            if char == "[":
                return self.items()
            if char in "\"'":
                return self.quoted(char)
        return self.bare(stop)

    def items(self) -> list[Any]:
        self.position += 1
        values: list[Any] = []
        while self.position < len(self.text) and self.text[self.position] != "]":
            values.append(self.value(stop=",]"))
            if self.position < len(self.text) and self.text[self.position] == ",":
                self.position += 1
        self._expect("]")
        return values

    def quoted(self, quote: str) -> str:
        closing = self.text.find(quote, self.position + 1)
        if closing < 0:
            self.fail(f"unclosed {quote}")
        value = self.text[self.position + 1 : closing]
        self.position = closing + 1
        return value

    def bare(self, stop: str) -> str:
        in_list = "]" in stop
        start = self.position
        while self.position < len(self.text):
            char = self.text[self.position]
            # Between pairs, a comma ends the value only when a Key= follows it.
            ends_pair = char != "," or in_list or _KEY.match(self.text, self.position + 1)
            if char in stop and ends_pair:
                break
            self.position += 1
        return self.text[start : self.position].strip()

    def _expect(self, char: str) -> None:
        if self.position >= len(self.text) or self.text[self.position] != char:
            self.fail(f"expected {char!r}")
        self.position += 1
