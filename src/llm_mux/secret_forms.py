"""Every spelling of a secret, found fast.

A secret leaks in more shapes than itself: a server echoing a header answers it
JSON-escaped (``\\"``, ``\\\\``, ``\\u00e9``, surrogate pairs), JSON inside JSON escapes it
twice, a URL percent-encodes it, HTML escapes it as character references, and an
``Authorization: Basic`` header or a shell step base64-encodes it. A :class:`Masker` finds a
secret in any of these spellings — character by character, so mixed spellings count too —
and replaces it.

Matching a pattern of alternatives at every position of a large output is slow (seconds on
64 MiB), so the search is anchored: a spelling either holds the secret's longest run of ASCII
letters and digits verbatim (every encoder above leaves them as they are) or escapes a letter
or digit (``\u0041``, ``%41``, ``&#65;``: rare, so always suspect). The pattern only runs in a
window around such places. Base64 spellings are literals.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

_NAMED = {'"': ("quot",), "&": ("amp",), "<": ("lt",), ">": ("gt",), "'": ("apos",)}
_SHORT = {'"': '"', "\\": "\\", "/": "/", "'": "'", "\n": "n", "\t": "t", "\r": "r"}
_SHORT |= {"\b": "b", "\f": "f"}
_ESCAPE = r"\\{1,16}"  # one backslash, or the doubled ones of JSON nested in JSON
_WIDEST = 64  # most characters one character of a secret can take in any spelling
_MIN_BASE64 = 8  # shorter fragments would mask ordinary words
_ALNUM = re.compile(r"[A-Za-z0-9]+")
_ALNUM_HEX = r"(?:3[0-9]|[46][1-9a-fA-F]|[57][0-9aA])"
_ALNUM_DECIMAL = r"(?:4[89]|5[0-7]|6[5-9]|[78][0-9]|9[07-9]|1[01][0-9]|12[0-2])"
_ALNUM_ESCAPE = re.compile(
    rf"\\\\*(?:u00|U000000|x){_ALNUM_HEX}|%{_ALNUM_HEX}"
    rf"|&#(?:[xX]0*{_ALNUM_HEX}|0*{_ALNUM_DECIMAL});"
)
# what every escaped letter or digit starts with; found with str.find, far faster than a
# regular-expression search over a large text
_ESCAPE_STARTS = ("\\u00", "\\U000000", "\\x", "%", "&#")


def escaped_alnum_spots(text: str) -> list[tuple[int, int]]:
    """Where ``text`` escapes an ASCII letter or digit (``\\u0041``, ``%41``, ``&#65;``…)."""
    spots = []
    for start in _ESCAPE_STARTS:
        at = text.find(start)
        while at != -1:
            found = _ALNUM_ESCAPE.match(text, at)
            if found is not None:
                spots.append(found.span())
            at = text.find(start, at + 1)
    return spots


def _hex(number: int, width: int) -> str:
    """``number`` in hex, zero-padded to ``width``, either case."""
    return f"(?i:{number:0{width}x})"


def _char(c: str) -> str:
    """A pattern for one character of a secret in any of its spellings."""
    code = ord(c)
    forms = [re.escape(c)]
    if c == "\\":
        forms.append(_ESCAPE)
    if c in _SHORT:
        forms.append(_ESCAPE + re.escape(_SHORT[c]))
    if code <= 0xFFFF:
        forms.append(f"{_ESCAPE}u{_hex(code, 4)}")
    else:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.append(f"{_ESCAPE}u{_hex(high, 4)}{_ESCAPE}u{_hex(low, 4)}")
        forms.append(f"{_ESCAPE}U{_hex(code, 8)}")
    if code <= 0xFF:
        forms.append(f"{_ESCAPE}x{_hex(code, 2)}")
    forms.append("".join(f"%{_hex(b, 2)}" for b in c.encode("utf-8", "surrogatepass")))
    if c == " ":
        forms.append(r"\+")
    forms.append(f"&#0{{0,4}}{code};")
    forms.append(f"&#[xX]0{{0,4}}{_hex(code, 1)};")
    forms.extend(f"&{name};" for name in _NAMED.get(c, ()))
    return "(?:" + "|".join(forms) + ")"


def base64_fragments(value: str) -> set[str]:
    """The parts of ``value``'s base64 that do not depend on the bytes around it.

    The value may start at any byte offset of the encoded data, so each of the three
    alignments gives a fragment (standard and URL-safe alphabets).
    """
    data = value.encode("utf-8", "surrogatepass")
    found: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode("ascii")
        start, end = -(-8 * shift // 6), (8 * shift + 8 * len(data)) // 6
        fragment = encoded[start:end]
        if len(fragment) >= _MIN_BASE64:
            found |= {fragment, fragment.replace("+", "-").replace("/", "_")}
    return found


@dataclass(frozen=True)
class _Form:
    """How to find one secret: the pattern, its verbatim anchor, and base64 literals."""

    pattern: re.Pattern[str]
    anchor: str
    reach: int  # how far a match can extend beyond its anchor, either side
    literals: tuple[str, ...]

    @classmethod
    def of(cls, value: str) -> _Form:
        runs = _ALNUM.findall(value)
        anchor = max(runs, key=len) if runs else ""
        pattern = re.compile("".join(_char(c) for c in value))
        literals = tuple(sorted(base64_fragments(value), key=len, reverse=True))
        return cls(pattern, anchor, len(value) * _WIDEST, literals)

    def mask(self, text: str, mask: str, escapes: list[tuple[int, int]]) -> str:
        text = self._mask_spellings(text, mask, escapes)
        for literal in self.literals:
            if literal in text:
                text = text.replace(literal, mask)
        return text

    def _mask_spellings(self, text: str, mask: str, escapes: list[tuple[int, int]]) -> str:
        if not self.anchor:
            return self.pattern.sub(mask, text)
        windows = self._windows(text, escapes)
        if not windows:
            return text
        pieces, done = [], 0
        for start, end in windows:
            pieces += [text[done:start], self.pattern.sub(mask, text[start:end])]
            done = end
        pieces.append(text[done:])
        return "".join(pieces)

    def _windows(self, text: str, escapes: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Merged spans of text around each anchor and each escaped letter or digit."""
        spots = sorted([*self._anchors(text), *escapes])
        windows: list[tuple[int, int]] = []
        for at, until in spots:
            start, end = max(0, at - self.reach), min(len(text), until + self.reach)
            if windows and start <= windows[-1][1]:
                windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
            else:
                windows.append((start, end))
        return windows

    def _anchors(self, text: str) -> list[tuple[int, int]]:
        found, at = [], text.find(self.anchor)
        while at != -1:
            found.append((at, at + len(self.anchor)))
            at = text.find(self.anchor, at + 1)
        return found


class Masker:
    """Masks a fixed set of secrets; longer ones first, so one inside another is masked whole."""

    def __init__(self, values: frozenset[str]) -> None:
        self._forms = [_Form.of(v) for v in sorted(values, key=len, reverse=True)]

    def mask(self, text: str, mask: str) -> str:
        escapes = escaped_alnum_spots(text)
        for form in self._forms:
            masked = form.mask(text, mask, escapes)
            if masked != text:  # positions moved
                text, escapes = masked, escaped_alnum_spots(masked)
        return text
