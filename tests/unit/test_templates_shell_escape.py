"""``shell_escape`` in a shell ``run``: a nested shell parses the escaped text back into the value.

In a bare word it is the value as one word; in every other context it is ``shlex.quote`` of the
value, carried exactly, so ``bash -c '…'``, ``sh -c "…"``, ``eval`` and here-documents fed to a
shell receive a word they parse back into exactly the value — and never run any of it.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from llm_mux.templates import prepare_shell
from tests.unit.test_templates_shell import SHELLS, VALUES, output_of, run

# Each line hands the escaped value to a shell that parses it again, and writes one file.
NESTED = """\
bash -c 'printf "%s" {{ v | shell_escape }} > bash_single'
bash -c "printf '%s' {{ v | shell_escape }} > bash_double"
sh -c 'printf "%s" {{ v | shell_escape }}' > sh_single
sh -c "printf '%s' {{ v | shell_escape }}" > sh_double
eval "printf '%s' {{ v | shell_escape }}" > eval_double
eval 'printf "%s" '"{{ v | shell_escape }}" > eval_joined
sh -c "$(printf '%s' 'printf %s {{ v | shell_escape }}')" > subst
sh <<EOF > heredoc
printf '%s' {{ v | shell_escape }}
EOF
sh <<'EOF' > heredoc_quoted
printf '%s' {{ v | shell_escape }}
EOF
sh -c "printf '%s' {{ ('<' ~ v ~ '>') | shell_escape }}" > expression
printf '%s' x{{ v | shell_escape }}y > bare_joined
printf '%s' "{{ v | shell_escape }}" > double
# {{ v | shell_escape }} in a comment stays inert
"""

HOSTILE = [
    "a b; touch pwned",
    "'; touch pwned; '",
    '"; touch pwned; "',
    "$(touch pwned)",
    "`touch pwned`",
    "\\'$(touch pwned)\\",
    "x\ntouch pwned\n",
    'it\'s "q" \\ \\n\nEOF\n$HOME ${x} !',
    "a[$(touch pwned)]",
    "",
    "-n",
]


def check_nested(value: str, tmp: Path) -> None:
    script = prepare_shell(NESTED, {"v": value})
    exact = value.encode()
    want = dict.fromkeys(
        ("bash_single", "bash_double", "sh_single", "sh_double", "eval_double", "eval_joined"),
        exact,
    )
    want.update(subst=exact, heredoc=exact, heredoc_quoted=exact)
    want.update(expression=f"<{value}>".encode(), bare_joined=f"x{value}y".encode())
    want.update(double=shlex.quote(value).encode())
    for shell in SHELLS:
        work = tmp / shell
        work.mkdir()
        proc = run(script, shell, work)
        assert proc.returncode == 0, (shell, proc.stderr)
        files = {p.name: p.read_bytes() for p in work.iterdir()}
        assert "pwned" not in files, shell
        assert files == want, shell


@pytest.mark.parametrize("value", HOSTILE)
def test_a_nested_shell_receives_exactly_the_value(value: str, tmp_path: Path) -> None:
    check_nested(value, tmp_path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=VALUES)
def test_any_value_round_trips_through_a_nested_shell(value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check_nested(value, Path(tmp))


def test_in_a_bare_word_it_is_the_value_as_one_word() -> None:
    template = "printf '<%s>' {{ v | shell_escape }} {{ w | shell_escape }}"
    assert output_of(template, {"v": "a b", "w": ""}) == b"<a b><>"
    script = prepare_shell(template, {"v": "a b", "w": "c"})
    assert sorted(script.env.values()) == ["a b", "c"]


def test_the_escaped_text_is_carried_not_pasted() -> None:
    script = prepare_shell("bash -c 'echo {{ v | shell_escape }}'", {"v": "a b; touch pwned"})
    assert "pwned" not in script.script
    assert script.env == {"LLM_MUX_V1": "'a b; touch pwned'"}


def test_values_captured_in_a_set_block_keep_their_quoted_text() -> None:
    template = "{% set q %}{{ v | shell_escape }}{% endset %}sh -c \"printf '%s' {{ q }}\""
    assert output_of(template, {"v": "a'b $(touch pwned)"}) == b"a'b $(touch pwned)"
