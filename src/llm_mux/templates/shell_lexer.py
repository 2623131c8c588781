"""A small POSIX shell lexer that finds the quoting context of each value slot.

It reads only text the workflow author wrote; every ``{{ }}`` is one ``SLOT`` character and
values are never lexed. For each slot it reports where it stands (bare word, double or single
quotes, here-document, comment), how many backtick levels enclose it, and the edits that make
quoted here-documents able to carry a value. A slot where no quoting can pass the value
exactly (``$'…'``, ``${…}``, arithmetic, a here-document delimiter, right after ``$``, and
the places where bash evaluates a value, see :mod:`~llm_mux.templates.shell_bash`) raises
:class:`Refused`; we never guess.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

from llm_mux.templates import shell_bash
from llm_mux.templates.shell_bash import Names, Word
from llm_mux.templates.shell_text import (
    find_terminator,
    fresh_delimiter,
    unescape_backticks,
    unquote_delimiter,
)

SLOT = "\x00"


class Where(enum.Enum):
    """The quoting context of a slot."""

    BARE = "a bare word"
    DOUBLE = "double quotes"
    SINGLE = "single quotes"
    HEREDOC = "a here-document"
    COMMENT = "a comment"


@dataclass(frozen=True)
class Site:
    """One slot: its position in the scanned text and its context."""

    position: int
    where: Where
    level: int  # enclosing backtick substitutions
    start: int  # where the replacement begins: the slot, or a literal backslash before it

    @property
    def after_backslash(self) -> bool:
        return self.start != self.position


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:end]`` (an insertion when equal), escaped for ``level`` backticks."""

    start: int
    end: int
    text: str
    level: int


@dataclass
class Scan:
    """Everything the lexer found."""

    sites: list[Site] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    names: Names = field(default_factory=Names)


class Refused(Exception):
    """A slot stands where its value cannot be passed exactly."""

    def __init__(self, position: int, context: str) -> None:
        super().__init__(context)
        self.position = position
        self.context = context


_WORD_RUN = re.compile(r"[^ \t\n\x00\\'\"`$;&|()<>]+")
_DQ_RUN = re.compile(r"[^\x00\\\"`$]+")
_HEREDOC_RUN = re.compile(r"[^\x00\\`$]+")
_HEREDOC_SPECIAL = re.compile(r"[\x00\\`$]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")
_PLAIN_DELIMITER = re.compile(r"[A-Za-z0-9_]+")
_LEADING_KEYWORDS = frozenset(("if", "then", "else", "elif", "while", "until", "do", "!", "{"))
_META = " \t\n;&|()<>"
_CASE_TERMINATORS = (";;&", ";;", ";&", ";|")
_TEST_REFUSALS = {
    **dict.fromkeys(("-eq", "-ne", "-lt", "-le", "-gt", "-ge"), "arithmetic comparison"),
    "-v": "-v test (bash evaluates an array subscript)",
}
_COMPOUND = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]]*")


@dataclass
class _Heredoc:
    delimiter: str
    quoted: bool
    strip_tabs: bool
    opener: tuple[int, int]
    targets: list[str] | None = None  # names its command reads it into (None: not yet known)


@dataclass
class _Commands:
    """Word-level state of one command list (the top level, ``$(…)`` or a backtick body)."""

    word: str = ""
    plain: bool = True
    in_word: bool = False
    command_start: bool = True
    depth: int = 0
    case: list[str] = field(default_factory=list)
    heredocs: list[_Heredoc] = field(default_factory=list)
    first: bool = False  # the current word began at a command position
    saved_refusal: str | None = None  # to restore when a ``let`` command ends
    in_let: bool = False
    test_collector: bool = False  # this list opened ``[[`` and collects its slots
    test_refusal: str | None = None
    words: list[Word] = field(default_factory=list)  # of the current simple command
    word_start: int = 0
    redirect_next: bool = False  # the next word is a redirection's target
    pipe_slot: int | None = None  # the first slot of the pipeline so far
    word_redirect: bool = False


def scan(text: str) -> Scan:
    """Lex a rendered shell script in which each ``{{ }}`` is a ``SLOT``."""
    lexer = _Lexer(text, list(range(len(text) + 1)), 0, Scan(), None)
    lexer.commands(None, len(text))
    refusal = shell_bash.check_assignments(lexer.out.names)
    if refusal is not None:
        raise Refused(*refusal)
    return lexer.out


class _Lexer:
    """Lexes one text; backtick bodies get their own lexer over the unescaped body."""

    def __init__(
        self, text: str, origin: list[int], level: int, out: Scan, refusal: str | None
    ) -> None:
        self.s = text
        self.i = 0
        self.origin = origin  # position in this text -> position in the scanned text
        self.level = level
        self.out = out
        self.refusal = refusal
        self.collect: list[int] | None = None  # slots inside an open ``[[ … ]]``

    # --- bookkeeping ---

    def site(self, i: int, where: Where, after_backslash: bool = False) -> None:
        if self.collect is not None:
            self.collect.append(self.origin[i])
        if self.refusal is not None:
            raise Refused(self.origin[i], self.refusal)
        start = self.origin[i - 1] if after_backslash else self.origin[i]
        self.out.sites.append(Site(self.origin[i], where, self.level, start))

    def refuse(self, i: int, context: str) -> None:
        raise Refused(self.origin[i], context)

    def edit(self, start: int, end: int, text: str) -> None:
        self.out.edits.append(Edit(self.origin[start], self.origin[end], text, self.level))

    @contextmanager
    def refusing(self, context: str) -> Iterator[None]:
        saved = self.refusal
        self.refusal = saved or context
        try:
            yield
        finally:
            self.refusal = saved

    def peek(self, offset: int, end: int) -> str:
        j = self.i + offset
        return self.s[j] if j < end else ""

    # --- command lists ---

    def commands(self, closer: str | None, end: int) -> None:
        """Lex commands until the ``)`` closing ``$(`` (``closer``) or ``end``."""
        st = _Commands()
        while self.i < end:
            c = self.s[self.i]
            if c in " \t":
                self.finish_word(st)
                self.i += 1
            elif c == "\n":
                self.newline(st, end)
            elif c in ";&|()<>":
                if self.operator(st, closer, end):
                    return
            elif c == "#" and not st.in_word:
                self.comment(end)
            else:
                self.word_part(st, end)
        self.finish_word(st)
        self.end_command(st)

    def word_part(self, st: _Commands, end: int) -> None:
        c = self.s[self.i]
        if not st.in_word:
            st.first = st.command_start
            st.word_start, st.word_redirect = self.i, st.redirect_next
            st.redirect_next = False
        st.in_word = True
        match = _WORD_RUN.match(self.s, self.i, end)
        if match:
            st.word += match.group()
            self.i = match.end()
            return
        st.plain = False
        subscript = st.first and _SUBSCRIPT.fullmatch(st.word)
        # bash evaluates an array subscript as arithmetic, which can run commands
        with self.refusing("inside an array subscript") if subscript else nullcontext():
            if c == SLOT:
                self.site(self.i, Where.BARE)
                self.i += 1
            else:
                self.quoting(c, end)

    def quoting(self, c: str, end: int) -> None:
        """A backslash, quote, ``$`` or backtick outside quotes."""
        if c == "\\":
            nxt = self.peek(1, end)
            if nxt == SLOT:
                self.refuse(self.i + 1, "right after a backslash outside quotes")
            self.i += 2
        elif c == "'":
            self.single_quoted(end)
        elif c == '"':
            self.i += 1
            self.double_quoted(end, heredoc=False)
        elif c == "`":
            self.backticks(end, in_double=False)
        else:
            self.dollar(end, in_double=False)

    def finish_word(self, st: _Commands) -> None:
        if not st.in_word:
            return
        if st.first or st.words:
            st.words.append(self.word(st))
        word = st.word if st.plain else None
        st.word, st.plain, st.in_word = "", True, False
        if st.test_collector:
            self.test_word(st, word)
            return
        top = st.case[-1] if st.case else None
        if top == "subject":
            st.case[-1] = "in"
        elif top == "in":
            st.case[-1] = "pattern"
        elif top == "pattern":
            if word == "esac":
                st.case.pop()
                st.command_start = False
        elif st.command_start and word in ("[[", "let"):
            self.arithmetic_command(st, word)
        elif st.command_start and word == "case":
            st.case.append("subject")
            st.command_start = False
        elif st.command_start and word == "esac" and top == "body":
            st.case.pop()
            st.command_start = False
        else:
            st.command_start = st.command_start and word in _LEADING_KEYWORDS

    def word(self, st: _Commands) -> Word:
        start = st.word_start
        slots = [(j - start, self.origin[j]) for j in _slots(self.s, start, self.i)]
        return Word(self.s[start : self.i], slots, st.word_redirect)

    def arithmetic_command(self, st: _Commands, word: str | None) -> None:
        """``let`` evaluates its words as arithmetic; ``[[`` does for -eq and friends (bash)."""
        st.command_start = False
        if word == "let" and not st.in_let:
            st.saved_refusal, st.in_let = self.refusal, True
            self.refusal = self.refusal or "in a let command (arithmetic)"
        elif word == "[[" and self.collect is None:
            self.collect, st.test_collector, st.test_refusal = [], True, None

    def test_word(self, st: _Commands, word: str | None) -> None:
        if word in _TEST_REFUSALS:
            st.test_refusal = st.test_refusal or _TEST_REFUSALS[word]
        elif word == "]]":
            slots = self.collect or []
            self.collect, st.test_collector = None, False
            if st.test_refusal and slots:
                raise Refused(slots[0], f"in a [[ … ]] {st.test_refusal}")

    def end_command(self, st: _Commands) -> None:
        if st.in_let:
            self.refusal, st.in_let = st.saved_refusal, False
        if st.test_collector:
            self.collect, st.test_collector = None, False
        words, st.words, st.redirect_next = st.words, [], False
        names = self.out.names
        refusal = shell_bash.check_command(words, names)
        if refusal is not None:
            raise Refused(*refusal)
        for heredoc in st.heredocs:  # a value fed on stdin to ``read n`` is given to n
            heredoc.targets = names.targets if heredoc.targets is None else heredoc.targets
        if st.pipe_slot is not None:
            for name in names.targets:
                names.assign(name, st.pipe_slot)
        first = shell_bash.first_slot(words)
        st.pipe_slot = first if st.pipe_slot is None else st.pipe_slot

    def newline(self, st: _Commands, end: int) -> None:
        self.finish_word(st)
        self.end_command(st)
        st.pipe_slot = None
        self.i += 1
        if not st.case or st.case[-1] == "body":
            st.command_start = True
        pending, st.heredocs = st.heredocs, []
        for heredoc in pending:
            self.heredoc_body(heredoc, end)

    def operator(self, st: _Commands, closer: str | None, end: int) -> bool:
        """Handle an operator character; True when it closes the current ``$(``."""
        c = self.s[self.i]
        if c == "(" and st.in_word and st.plain and _COMPOUND.fullmatch(st.word):
            self.array_body(end)  # ``a=(…)``: the word goes on
            return False
        self.finish_word(st)
        top = st.case[-1] if st.case else None
        if c in "<>":
            self.redirection(st, end)
            return False
        if c == "(":
            return self.open_paren(st, top, end)
        self.end_command(st)
        pipe = c == "|" and self.peek(1, end) != "|"
        st.pipe_slot = st.pipe_slot if pipe else None
        if c == ")":
            return self.close_paren(st, top, closer)
        terminator = next((t for t in _CASE_TERMINATORS if self.s.startswith(t, self.i)), None)
        if c == ";" and terminator and top == "body":
            st.case[-1] = "pattern"
            self.i += len(terminator)
            return False
        self.i += 2 if self.peek(1, end) in "&|" and self.peek(1, end) else 1
        st.command_start = True
        return False

    def open_paren(self, st: _Commands, top: str | None, end: int) -> bool:
        if top == "pattern":
            self.i += 1
        elif self.peek(1, end) == "(":  # bash arithmetic: ((…)), for ((…))
            self.i += 2
            self.arithmetic(end, "))", "inside arithmetic ((…)) (for nested subshells write '( (')")
            st.command_start = False
        else:
            st.depth += 1
            self.i += 1
            st.command_start = True
        return False

    def close_paren(self, st: _Commands, top: str | None, closer: str | None) -> bool:
        self.i += 1
        if top == "pattern":
            st.case[-1] = "body"
            st.command_start = True
        elif st.depth > 0:
            st.depth -= 1
        elif closer == ")":
            return True
        return False

    def redirection(self, st: _Commands, end: int) -> None:
        s, i = self.s, self.i
        st.redirect_next = True
        if s.startswith("<<<", i):
            self.i += 3
        elif s.startswith("<<", i):
            strip = s.startswith("<<-", i)
            self.i += 3 if strip else 2
            self.heredoc_operator(st, strip, end)
            st.redirect_next = False
        else:
            self.i += 2 if self.peek(1, end) in ">&|" and self.peek(1, end) else 1

    def array_body(self, end: int) -> None:
        """The ``(…)`` of ``a=(…)``: a slot in an element's ``[subscript]`` is refused."""
        self.i += 1
        subscript = False
        while self.i < end:
            c = self.s[self.i]
            if c == ")":
                self.i += 1
                return
            if c in " \t\n":
                subscript = False
                self.i += 1
                continue
            if c == "#" and self.s[self.i - 1] in "( \t\n":
                self.comment(end)
                continue
            subscript = subscript or (c == "[" and self.s[self.i - 1] in "( \t\n")
            match = _WORD_RUN.match(self.s, self.i, end)
            if match:
                subscript = subscript and "]" not in match.group()
                self.i = match.end()
                continue
            with self.refusing("inside an array subscript") if subscript else nullcontext():
                if c == SLOT:
                    self.site(self.i, Where.BARE)
                    self.i += 1
                elif c in ";&|<>(":
                    self.i += 1
                else:
                    self.quoting(c, end)

    def comment(self, end: int) -> None:
        stop = self.s.find("\n", self.i, end)
        stop = end if stop < 0 else stop
        for j in _slots(self.s, self.i, stop):
            self.site(j, Where.COMMENT)
        self.i = stop

    # --- quoting ---

    def single_quoted(self, end: int) -> None:
        stop = self.s.find("'", self.i + 1, end)
        stop = end if stop < 0 else stop
        for j in _slots(self.s, self.i + 1, stop):
            self.site(j, Where.SINGLE)
        self.i = stop + 1

    def double_quoted(self, end: int, *, heredoc: bool) -> None:
        """The inside of ``"…"`` (returns after the closing quote) or a here-document body."""
        run, where = (_HEREDOC_RUN, Where.HEREDOC) if heredoc else (_DQ_RUN, Where.DOUBLE)
        escapable = "$`\\\n" if heredoc else '$`\\\n"'
        while self.i < end:
            match = run.match(self.s, self.i, end)
            if match:
                self.i = match.end()
                continue
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return
            if c == SLOT:
                self.site(self.i, where)
                self.i += 1
            elif c == "\\":
                nxt = self.peek(1, end)
                if nxt == SLOT:
                    self.site(self.i + 1, where, after_backslash=True)
                self.i += 2 if nxt and nxt in escapable + SLOT else 1
            elif c == "`":
                self.backticks(end, in_double=not heredoc)
            else:
                self.dollar(end, in_double=True)

    def dollar(self, end: int, *, in_double: bool) -> None:
        nxt = self.peek(1, end)
        if nxt == SLOT:
            self.refuse(self.i + 1, "right after a '$'")
        if nxt == "(" and self.peek(2, end) == "(":
            self.i += 3
            self.arithmetic(end, "))", "inside arithmetic $((…))")
        elif nxt == "(":
            self.i += 2
            self.commands(")", end)
        elif nxt == "{":
            self.i += 2
            self.parameter(end, in_double=in_double)
        elif nxt == "[":
            self.i += 2
            self.arithmetic(end, "]", "inside arithmetic $[…]")
        elif nxt == "'" and not in_double:
            self.i += 2
            self.ansi_c(end)
        elif nxt == '"' and not in_double:
            self.i += 2
            self.double_quoted(end, heredoc=False)
        else:
            match = _NAME.match(self.s, self.i + 1, end)
            self.i = match.end() if match else self.i + 1

    def ansi_c(self, end: int) -> None:
        with self.refusing("inside $'…' (ANSI-C quoting)"):
            while self.i < end:
                c = self.s[self.i]
                if c == SLOT or (c == "\\" and self.peek(1, end) == SLOT):
                    self.site(self.i if c == SLOT else self.i + 1, Where.SINGLE)
                if c == "'":
                    self.i += 1
                    return
                self.i += 2 if c == "\\" else 1

    def parameter(self, end: int, *, in_double: bool) -> None:
        """``${…}``: any slot inside is refused (its operators re-interpret the value)."""
        with self.refusing("inside a ${…} parameter expansion"):
            while self.i < end:
                c = self.s[self.i]
                if c == "}":
                    self.i += 1
                    return
                self.nested(c, end, in_double=in_double)

    def arithmetic(self, end: int, closer: str, context: str) -> None:
        """``$((…))``, ``((…))`` or ``$[…]``: arithmetic evaluates text as code; refused."""
        depth = 0
        with self.refusing(context):
            while self.i < end:
                c = self.s[self.i]
                if depth == 0 and self.s.startswith(closer, self.i):
                    self.i += len(closer)
                    return
                if c in "()":
                    depth = depth + 1 if c == "(" else max(depth - 1, 0)
                    self.i += 1
                else:
                    self.nested(c, end, in_double=True)

    def nested(self, c: str, end: int, *, in_double: bool) -> None:
        """One character inside a refusing construct; quotes and substitutions are followed."""
        if c == SLOT:
            self.site(self.i, Where.BARE)
        elif c == "\\":
            if self.peek(1, end) == SLOT:
                self.site(self.i + 1, Where.BARE)
            self.i += 2
        elif c == "'" and not in_double:
            self.single_quoted(end)
        elif c == '"':
            self.i += 1
            self.double_quoted(end, heredoc=False)
        elif c == "`":
            self.backticks(end, in_double=in_double)
        elif c == "$":
            self.dollar(end, in_double=in_double)
        else:
            self.i += 1

    # --- backticks ---

    def backticks(self, end: int, *, in_double: bool) -> None:
        """Lex a backtick body as its own command list, over its unescaped text."""
        start = self.i + 1
        j = start
        while j < end and self.s[j] != "`":
            j += 2 if self.s[j] == "\\" else 1
        stop = min(j, end)
        body, origin = unescape_backticks(self.s, start, stop, self.origin, in_double)
        inner = _Lexer(body, origin, self.level + 1, self.out, self.refusal)
        inner.collect = self.collect
        inner.commands(None, len(body))
        self.i = stop + 1

    # --- here-documents ---

    def heredoc_operator(self, st: _Commands, strip: bool, end: int) -> None:
        while self.i < end and self.s[self.i] in " \t":
            self.i += 1
        start = self.i
        delimiter, quoted = self.delimiter_word(end)
        if self.i > start:
            st.heredocs.append(_Heredoc(delimiter, quoted, strip, (start, self.i)))

    def delimiter_word(self, end: int) -> tuple[str, bool]:
        """The delimiter after quote removal, and whether any part of it was quoted."""
        parts: list[str] = []
        quoted = False
        while self.i < end and self.s[self.i] not in _META:
            c = self.s[self.i]
            stop = self.i + 1
            if c == "\\":
                stop = min(self.i + 2, end)
            elif c in "'\"":
                close = self.s.find(c, self.i + 1, end)
                stop = end if close < 0 else close + 1
            text = self.s[self.i : stop]
            if SLOT in text:
                self.refuse(self.i + text.index(SLOT), "in a here-document delimiter")
            quoted = quoted or c in "\\'\""
            parts.append(unquote_delimiter(text))
            self.i = stop
        return "".join(parts), quoted

    def heredoc_body(self, heredoc: _Heredoc, end: int) -> None:
        start, found = self.i, len(self.out.sites)
        body_end, terminator = find_terminator(
            self.s, start, end, heredoc.delimiter, heredoc.strip_tabs
        )
        if not heredoc.quoted:
            self.double_quoted(body_end, heredoc=True)
        elif SLOT in self.s[start:body_end]:
            self.unquote_heredoc(heredoc, start, body_end, terminator)
        for site in self.out.sites[found:]:
            for name in heredoc.targets or ():
                self.out.names.assign(name, site.position)
        if terminator is None:
            self.i = end
        else:
            self.i = min(terminator[1] + 1, end)

    def unquote_heredoc(
        self, heredoc: _Heredoc, start: int, stop: int, terminator: tuple[int, int] | None
    ) -> None:
        """Turn a quoted here-document holding slots into an unquoted one with the same text.

        Literal ``\\``, ``$`` and backticks are escaped, so the author's text stays exactly
        as written, and each slot becomes a variable reference that expands to exactly the
        value. The terminator is found on the raw lines before any expansion, so no value can
        end the body early.
        """
        body = self.s[start:stop]
        delimiter = heredoc.delimiter
        if not _PLAIN_DELIMITER.fullmatch(delimiter):
            delimiter = fresh_delimiter(body, heredoc.strip_tabs)
        self.edit(heredoc.opener[0], heredoc.opener[1], delimiter)
        if terminator is not None and delimiter != heredoc.delimiter:
            line_start, line_end = terminator
            line = self.s[line_start:line_end]
            tabs = len(line) - len(line.lstrip("\t")) if heredoc.strip_tabs else 0
            self.edit(line_start + tabs, line_end, delimiter)
        for match in _HEREDOC_SPECIAL.finditer(self.s, start, stop):
            j = match.start()
            if match.group() == SLOT:
                self.site(j, Where.HEREDOC)
            else:
                self.edit(j, j, "\\")


def _slots(text: str, start: int, stop: int) -> Iterator[int]:
    j = text.find(SLOT, start, stop)
    while j >= 0:
        yield j
        j = text.find(SLOT, j + 1, stop)
