"""Shell templates: every ``{{ }}`` reaches the command as exactly its value, run by real shells.

Scripts run under /bin/sh (dash here) and bash when present; outputs are compared as bytes.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_mux.errors import TemplateError
from llm_mux.templates import ShellScript, check_shell_template, prepare_shell
from llm_mux.templates.shell import MAX_INLINE_SCRIPT

SHELLS = [sh for sh in ("sh", "bash") if shutil.which(sh)]
NASTY = "a'b\"c $(echo PWNED) `echo PWNED` \\ \\\\ \\n\nEOF\n-n ${HOME} $HOME é\t*?[x] ~ # ;|&\n"

_PIECES = st.sampled_from(
    [
        "'", '"', "$", "`", "\\", "\n", "EOF", "\nEOF\n", "\tEOF", "$(", ")", "${", "}", "-",
        "--", "#", ";", "&", "|", "*", "?", "~", "!", " ", "\t", "\r", "é", "☃", "\u2028",
        "%s", "'\"'", "$(echo PWNED)", "`echo PWNED`", "${HOME}", "-n", "-e", "LLM_MUX_EOF",
        "{{ 7*7 }}", "{%", "\\\n", "\\'", "$'x'", "<<", "((", "))",
    ]
)  # fmt: skip
_CHARS = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=4)
VALUES = st.lists(_PIECES | _CHARS, max_size=10).map("".join)

# Each line writes one context's result to its own file; the value is compared per file.
ALL_CONTEXTS = """\
printf '%s' {{ v }} > bare
printf '%s' "{{ v }}" > double
printf '%s' '{{ v }}' > single
printf '%s' x{{ v }}"y{{ v }}"'z{{ v }}' > joined
printf '%s' {{ v | shell_escape }} > escaped
printf '%s' "{{ v | shell_escape }}" > escaped_double
printf '%s' '{{ v | shell_escape }}' > escaped_single
cat <<EOF > heredoc
{{ v }}
EOF
cat <<'EOF' > heredoc_quoted
{{ v }}
EOF
cat <<-"END" > heredoc_tabs
\t{{ v }}
\tEND
printf '%s' "$(printf '%s' {{ v }})" > subst
printf '%s' "$(printf '%s' "{{ v }}")" > subst_double
printf '%s' "`printf '%s' {{ v }}`" > backticks
printf '%s' "`printf '%s' \\"{{ v }}\\"`" > backticks_double
printf '%s' "$(printf '%s' "`printf '%s' '{{ v }}'`")" > nested
x=$(cat <<EOF
{{ v }}
EOF
); printf '%s' "$x" > heredoc_in_subst
# a comment holding {{ v }} must stay inert
"""


def expected(value: str) -> dict[str, str]:
    stripped = value.rstrip("\n")
    return {
        "bare": value,
        "double": value,
        "single": value,
        "joined": f"x{value}y{value}z{value}",
        "escaped": value,
        "escaped_double": shlex.quote(value),
        "escaped_single": shlex.quote(value),
        "heredoc": value + "\n",
        "heredoc_quoted": value + "\n",
        "heredoc_tabs": value + "\n",
        "subst": stripped,
        "subst_double": stripped,
        "backticks": stripped,
        "backticks_double": stripped,
        "nested": stripped,
        "heredoc_in_subst": stripped,
    }


def run(
    script: ShellScript, shell: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        script.argv(shell),
        env={**os.environ, **script.env},
        cwd=cwd,
        capture_output=True,
        timeout=30,
        check=False,
    )


def output_of(template: str, context: dict[str, Any], shell: str = "sh") -> bytes:
    with prepare_shell(template, context) as script:
        proc = run(script, shell)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=VALUES)
def test_every_context_carries_exactly_the_value(value: str) -> None:
    script = prepare_shell(ALL_CONTEXTS, {"v": value})
    assert script.script == prepare_shell(ALL_CONTEXTS, {"v": "x"}).script  # values stay out
    for shell in SHELLS:
        with tempfile.TemporaryDirectory() as tmp:
            proc = run(script, shell, Path(tmp))
            assert proc.returncode == 0, (shell, proc.stderr)
            assert proc.stdout == b""
            files = {p.name: p.read_bytes() for p in Path(tmp).iterdir()}
        want = {name: text.encode() for name, text in expected(value).items()}
        assert files == want, shell


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(VALUES, max_size=5))
def test_each_loop_iteration_carries_its_own_value(values: list[str]) -> None:
    template = "{% for x in xs %}printf '%s' {{ x }} > out{{ loop.index }}\n{% endfor %}"
    script = prepare_shell(template, {"xs": values})
    with tempfile.TemporaryDirectory() as tmp:
        proc = run(script, "sh", Path(tmp))
        assert proc.returncode == 0, proc.stderr
        files = {p.name: p.read_bytes() for p in Path(tmp).iterdir()}
    assert files == {f"out{i}": v.encode() for i, v in enumerate(values, 1)}


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    "template",
    [
        "# {{ v }}\nprintf ok",
        "printf ok # trailing {{ v }}",
        "x=$(printf ok # {{ v }}\n); printf '%s' \"$x\"",
        "printf ok\n  #{{ v }}",
    ],
)
def test_a_value_in_a_comment_is_inert(template: str, shell: str) -> None:
    hostile = "x\nprintf PWNED\n`printf PWNED`$(printf PWNED)"
    assert output_of(template, {"v": hostile}, shell) == b"ok"


def test_literal_shell_text_is_untouched() -> None:
    template = "x=1; printf '%s|' \"$x\" $HOME '${y}' {{ v }} \\\n\necho \"$(echo hi)\" # c\n"
    script = prepare_shell(template, {"v": "1"})
    assert script.script == template.replace("{{ v }}", '"${LLM_MUX_V1}"')
    plain = "a=1; printf '%s' \"$a\" 'q' <<'EOF'\nbody $x {{\nEOF\n"
    assert prepare_shell("{% raw %}" + plain + "{% endraw %}", {}).script == plain


def test_a_quoted_heredoc_keeps_the_authors_text_exactly() -> None:
    template = "cat <<'X Y'\n$HOME `id` \\ \\$ {{ v }} $(x)\nX Y\nprintf end"
    out = output_of(template, {"v": "X Y\n$HOME"})
    assert out == b"$HOME `id` \\ \\$ X Y\n$HOME $(x)\nend"


def test_values_may_hold_anything_a_template_could_mistake() -> None:
    value = "{{ 7*7 }} {% if %} LLMMUX0000P0Q"
    assert output_of("printf '%s' {{ v }}", {"v": value}) == value.encode()


def test_set_blocks_and_macros_pass_values_through_as_data() -> None:
    template = (
        "{% set y %}{{ v }}{% endset %}{% macro m(a) %}<{{ a }}>{% endmacro %}"
        "printf '%s|' {{ y }} {{ m(v) }}"
    )
    assert output_of(template, {"v": "$(x) 'q'"}) == b"$(x) 'q'|<$(x) 'q'>|"


def test_a_filter_block_that_changes_values_is_refused() -> None:
    with pytest.raises(TemplateError, match="changed after it was output"):
        prepare_shell("{% filter upper %}echo {{ v }}{% endfilter %}", {"v": "x"})


def test_case_patterns_inside_command_substitution_keep_contexts_right() -> None:
    template = 'x=$(case a in (a) printf "%s" {{ v }};; b) :;; esac); printf "%s" "$x" \'{{ v }}\''
    assert output_of(template, {"v": "a b'\""}) == b"a b'\"a b'\""


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("echo $'{{ v }}'", "inside $'…'"),
        ("echo $(( {{ v }} + 1 ))", "inside arithmetic"),
        ("(( {{ v }} ))", "inside arithmetic"),
        ("echo $[ {{ v }} ]", "inside arithmetic"),
        ("echo ${x:-{{ v }}}", "parameter expansion"),
        ('echo "${x#{{ v }}}"', "parameter expansion"),
        ("echo ${{ v }}", "right after a '$'"),
        ('echo "${{ v }}"', "right after a '$'"),
        ("echo \\{{ v }}", "backslash"),
        ("cat <<{{ v }}\nx\n", "here-document delimiter"),
        ("cat <<'E{{ v }}'\nx\n", "here-document delimiter"),
        ("echo `echo $(( {{ v }} ))`", "inside arithmetic"),
        ("for ((i = 0; i < {{ v }}; i++)); do :; done", "inside arithmetic"),
        ("[[ {{ v }} -eq 1 ]] && echo", "arithmetic comparison"),
        ("[[ $(echo {{ v }}) -gt 1 ]]", "arithmetic comparison"),
        ("let x={{ v }}+1", "let command"),
        ("a[{{ v }}]=1", "array subscript"),
        ("x=$(cat <<EOF\n${x:-{{ v }}}\nEOF\n)", "parameter expansion"),
    ],
)
def test_contexts_that_cannot_be_exact_are_refused(template: str, context: str) -> None:
    where = "step 'build' (run)"
    with pytest.raises(TemplateError) as info:
        prepare_shell(template, {"v": "1"}, where=where)
    assert info.value.exit_code == 2
    assert where in info.value.message and context in info.value.message
    with pytest.raises(TemplateError, match="refusing"):
        check_shell_template(template, where=where)


def test_static_check_passes_safe_templates_and_reports_syntax() -> None:
    check_shell_template("{% for f in steps.ls.output | lines %}wc -l {{ f }}\n{% endfor %}")
    check_shell_template("{% if team == 'rust' %}cargo test '{{ args.x }}'{% endif %}")
    with pytest.raises(TemplateError, match="line 2"):
        check_shell_template("echo\n{{ x }", where="step 's' (run)")


def test_a_nul_in_a_value_is_refused_by_name() -> None:
    with pytest.raises(TemplateError, match="NUL") as info:
        prepare_shell("echo\necho {{ v }}", {"v": "a\x00b"}, where="step 'n' (run)")
    assert "step 'n' (run)" in info.value.message and "line 2" in info.value.message


def test_large_values_are_spilled_to_private_files_and_read_back_exactly(tmp_path: Path) -> None:
    big = ("$(echo PWNED) 'q' \"d\" é\n" * 12000) + "\n\n"
    assert len(big.encode()) > 200 * 1024
    template = (
        "printf '%s' {{ v }} > a\ncat <<'EOF' > b\n{{ v }}\nEOF\nprintf '%s' '{{ small }}' > c"
    )
    script = prepare_shell(template, {"v": big, "small": "s'"}, spill_dir=tmp_path)
    spilled = [p for p in script.files if p.parent == tmp_path]
    assert len(spilled) == 1 and stat.S_IMODE(spilled[0].stat().st_mode) == 0o600
    assert all(len(v) < 64 * 1024 for v in script.env.values())
    for shell in SHELLS:
        work = tmp_path / shell
        work.mkdir()
        proc = run(script, shell, work)
        assert proc.returncode == 0, proc.stderr
        assert (work / "a").read_bytes() == big.encode()
        assert (work / "b").read_bytes() == big.encode() + b"\n"
        assert (work / "c").read_bytes() == b"s'"
    script.cleanup()
    assert not spilled[0].exists() and script.files == []


def test_many_values_stay_under_the_environment_budget(tmp_path: Path) -> None:
    values = {f"v{i}": f"{i}:" + "x" * 60_000 for i in range(24)}
    template = "".join(f"printf '%s\\n' \"{{{{ v{i} }}}}\"\n" for i in range(24))
    with prepare_shell(template, values, spill_dir=tmp_path) as script:
        assert sum(len(v) for v in script.env.values()) <= 1024 * 1024
        proc = run(script, "sh")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == list(values.values())


def test_a_script_larger_than_an_argument_runs_from_a_private_file(tmp_path: Path) -> None:
    filler = ": '" + "long literal text " * 12000 + "'\n"
    template = filler + "printf '%s' {{ v }}"
    with prepare_shell(template, {"v": NASTY}, spill_dir=tmp_path) as script:
        assert len(script.script) > MAX_INLINE_SCRIPT
        argv = script.argv()
        assert argv[0] == "sh" and Path(argv[1]).parent == tmp_path
        assert stat.S_IMODE(Path(argv[1]).stat().st_mode) == 0o600
        assert script.argv() == argv
        for shell in SHELLS:
            proc = run(script, shell)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout == NASTY.encode()
    assert not Path(argv[1]).exists()


def test_small_scripts_run_with_dash_c() -> None:
    script = prepare_shell("printf '%s' {{ v }}", {"v": NASTY})
    assert script.argv("bash") == ("bash", "-c", script.script)
    assert script.env == {"LLM_MUX_V1": NASTY} and script.files == []
    assert script.environ({"PATH": "/bin"}) == {"PATH": "/bin", "LLM_MUX_V1": NASTY}


@pytest.mark.parametrize(
    "template",
    [
        "[[ -n {{ v }} ]] && [ {{ v }} = {{ v }} ] && printf '%s' {{ v }}",
        "let n=1; printf '%s' {{ v }}",
        "f() { printf '%s' \"$1\"; }; (f {{ v }})",
        "a[1]={{ v }}; printf '%s' {{ v }}",
        "cat <<< {{ v }} | tr -d '\\n'",
        "cat <<A; cat <<'B' | tr -d '\\n'\n{{ v }}\nA\n{{ v }}\nB",
        "printf '%s' \"$(case x in (x) printf '%s' '{{ v }}';; esac)\"",
    ],
)
def test_contexts_that_are_safe_stay_allowed(template: str) -> None:
    value = "v 'w' $(x)"
    out = output_of(template, {"v": value}, "bash")
    assert value.encode() in out and b"$(x)" in out


def test_a_refusal_names_the_line_of_the_value() -> None:
    with pytest.raises(TemplateError) as info:
        prepare_shell("echo {{ a }}\n\necho $(( {{ b }} ))", {"a": 1, "b": 2}, where="step 'x'")
    assert info.value.message.startswith("step 'x': line 3: a {{ }} stands inside arithmetic")


def test_a_script_that_starts_like_an_option_still_runs() -> None:
    script = prepare_shell("-x 2>/dev/null || printf '%s' {{ v }}", {"v": "ok"})
    assert script.argv()[:3] == ("sh", "-c", "--")
    assert run(script, "sh").stdout == b"ok"


def test_probe_checks_both_loop_bodies_and_conditions() -> None:
    check_shell_template("{% if x %}echo '{{ x }}'{% else %}echo {{ y }}{% endif %}")
    with pytest.raises(TemplateError, match="arithmetic"):
        check_shell_template("{% for f in steps.a.output | lines %}echo $(( {{ f }} )){% endfor %}")
    check_shell_template("{{ x | from_json }}")  # cannot render with stand-ins: no verdict
