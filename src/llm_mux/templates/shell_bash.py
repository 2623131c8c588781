"""Commands where bash reads a word as arithmetic or as a variable name.

Where ``sh`` is bash (or a ``command_wrapper`` runs bash), a value standing in these places is
evaluated, and an array subscript in it (``a[$(cmd)]``) runs a command: a value given to a
variable declared integer (``declare``/``typeset``/``local``/``export``/``readonly`` with
``-i``, or a ``-n`` name reference) — by assignment, ``declare n=…``, ``for n in …``,
``read n``, ``printf -v n`` or ``mapfile n``; a variable name given to those commands or to
``unset``; an array subscript (``a=([…]=x)``); and ``test``/``[`` with ``-v``. Such a value
cannot be passed exactly, so the slot is refused. The lexer hands over each simple command
as its words; assignments are checked once the whole script is known, since a name may be
declared integer after the line that assigns it (a loop runs it again).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DECLARATIONS = frozenset(("declare", "typeset", "local", "export", "readonly"))
_PREFIXES = frozenset(("builtin", "command"))
_KEYWORDS = frozenset(("if", "then", "else", "elif", "while", "until", "do", "!", "{", "time"))
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[[^=]*\])?\+?=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_READ_ARGS = "adinNptu"  # options of read that take an argument
_MAPFILE_ARGS = "dnOsuCc"

Refusal = tuple[int, str]  # (slot position, context)


@dataclass
class Word:
    """One word of a simple command: its source text and its slots (offset, position)."""

    text: str
    slots: list[tuple[int, int]]
    redirect: bool = False  # the target of a redirection, not an argument

    @property
    def bare(self) -> str:
        """The text with quotes removed (enough for options and names)."""
        return self.text.replace("'", "").replace('"', "").replace("\\", "")

    def first_slot(self, after: int = -1) -> int | None:
        return next((pos for off, pos in self.slots if off > after), None)


@dataclass
class Names:
    """What the whole script declares integer, and the slots it assigns to names."""

    integer: set[str] = field(default_factory=set)
    assigned: list[tuple[str, int]] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # the last command reads into these

    def assign(self, name: str, slot: int | None) -> None:
        if slot is not None:
            self.assigned.append((name, slot))


def check_command(words: list[Word], names: Names) -> Refusal | None:
    """A refusal for a slot of this simple command, or None (assignments are recorded)."""
    names.targets = []
    args = [w for w in words if not w.redirect]
    while args and args[0].bare in _KEYWORDS:
        args = args[1:]
    while args and (match := _ASSIGNMENT.match(args[0].bare)):
        names.assign(match.group(1), _value_slot(args[0]))
        args = args[1:]
    while args and args[0].bare in _PREFIXES:
        args = args[1:]
    if not args:
        return None
    command, rest = args[0].bare, args[1:]
    if command in DECLARATIONS:
        return _declaration(command, rest, names)
    first_slot = _first_slot(words)
    if command in ("for", "select") and len(rest) >= 2 and rest[1].bare == "in":
        names.assign(rest[0].bare, _first_slot(rest[2:]))
    elif command == "read":
        return _name_operands(command, _operands(rest, _READ_ARGS, "a"), names, first_slot)
    elif command in ("mapfile", "readarray"):
        operands = _operands(rest, _MAPFILE_ARGS, "")[-1:]
        return _name_operands(command, operands, names, first_slot)
    elif command == "printf":
        operands = _operands(rest, "v", "v", operands=False)
        return _name_operands(command, operands, names, first_slot)
    elif command == "unset":
        return _refuse(rest, "in a name given to unset (bash evaluates an array subscript)")
    elif command in ("test", "[") and any(w.bare == "-v" for w in rest):
        return _refuse(rest, f"in a '{command} -v' test (bash evaluates an array subscript)")
    return None


def check_assignments(names: Names) -> Refusal | None:
    """Once the whole script is lexed: a slot assigned to a name declared integer."""
    for name, slot in names.assigned:
        if name in names.integer:
            return slot, (
                f"in a value given to '{name}', which the script declares integer "
                "(bash evaluates it as arithmetic)"
            )
    return None


def _declaration(command: str, rest: list[Word], names: Names) -> Refusal | None:
    integer = False
    options = True
    for word in rest:
        bare = word.bare
        if options and bare == "--":
            options = False
            continue
        if options and bare[:1] in ("-", "+") and word.first_slot() is None:
            integer = integer or (bare[0] == "-" and bool(set(bare[1:]) & {"i", "n"}))
            continue
        options = False
        refusal = _declared(command, word, integer, names)
        if refusal is not None:
            return refusal
    return None


def _declared(command: str, word: Word, integer: bool, names: Names) -> Refusal | None:
    equals = word.text.find("=")
    name_end = len(word.text) if equals < 0 else equals
    slot = next((pos for off, pos in word.slots if off < name_end), None)
    if slot is not None:
        return slot, f"in a variable name given to {command} (bash evaluates an array subscript)"
    name = word.bare.split("=", 1)[0].rstrip("+").split("[", 1)[0]
    value_slot = word.first_slot(name_end) if equals >= 0 else None
    if integer:
        names.integer.add(name)
        if value_slot is not None:
            return value_slot, (
                f"in a value given to '{command} -i' or '-n' (bash evaluates it as arithmetic)"
            )
    names.assign(name, value_slot)
    return None


def _operands(
    words: list[Word], with_argument: str, wanted: str, *, operands: bool = True
) -> list[tuple[Word, int]]:
    """Words naming variables, each with where its name starts: the argument of an option
    in ``wanted`` and, with ``operands``, every operand (options end at the first one)."""
    found: list[tuple[Word, int]] = []
    index = 0
    while index < len(words):
        word, bare = words[index], words[index].bare
        index += 1
        if bare == "--" or not bare.startswith("-") or len(bare) < 2:
            rest = words[index:] if bare == "--" else words[index - 1 :]
            found.extend((w, 0) for w in rest if operands)
            break
        for at, letter in enumerate(bare[1:], 1):
            if letter not in with_argument:
                continue
            if at < len(bare) - 1:  # -aNAME
                found.extend([(word, at + 1)] if letter in wanted else [])
            elif index < len(words):  # -a NAME
                found.extend([(words[index], 0)] if letter in wanted else [])
                index += 1
            break
    return found


def _name_operands(
    command: str, operands: list[tuple[Word, int]], names: Names, first_slot: int | None
) -> Refusal | None:
    for word, _start in operands:
        slot = word.first_slot()
        if slot is not None:
            return slot, (
                f"in a variable name given to {command} (bash evaluates an array subscript)"
            )
    for word, start in operands:
        match = _NAME.match(word.bare, start)
        if match:
            names.assign(match.group(), first_slot)
            names.targets.append(match.group())
    return None


def _refuse(words: list[Word], context: str) -> Refusal | None:
    slot = _first_slot(words)
    return None if slot is None else (slot, context)


def first_slot(words: list[Word]) -> int | None:
    """The position of the first slot in these words."""
    return _first_slot(words)


def _first_slot(words: list[Word]) -> int | None:
    return next((w.slots[0][1] for w in words if w.slots), None)


def _value_slot(word: Word) -> int | None:
    return word.first_slot(word.text.find("="))
