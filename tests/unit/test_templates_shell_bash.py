"""Where ``sh`` is bash, words it evaluates arithmetically are refused; a value never runs.

bash evaluates an array subscript in those words, so ``a[$(touch pwned)]`` runs ``touch``.
Every template here is either refused before it runs (exit 2, naming the context) or runs
under dash and bash without running any part of the value.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_mux.errors import TemplateError
from llm_mux.templates import ShellScript, check_shell_template, prepare_shell
from tests.unit.test_templates_shell import VALUES

SHELLS = [sh for sh in ("dash", "bash") if shutil.which(sh)]
ATTACKS = [
    "a[$(touch pwned)]",
    "a[`touch pwned`]",
    "x[$(touch pwned)]+1",
    "a[$(touch pwned)]=1",
    "n[$(touch pwned)] -v",
]


def run_in(script: ShellScript, shell: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        script.argv(shell),
        env={**os.environ, **script.env},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )


def refused(template: str, value: str) -> bool:
    """True when the template is refused, statically and when run; never half of it."""
    try:
        prepare_shell(template, {"v": value}, where="step 's' (run)")
    except TemplateError as exc:
        assert exc.exit_code == 2
        assert "step 's' (run)" in exc.message and "refusing" in exc.message, exc.message
        with pytest.raises(TemplateError, match="refusing"):
            check_shell_template(template)
        return True
    return False


def runs_nothing_of(template: str, value: str) -> None:
    script = prepare_shell(template, {"v": value})
    for shell in SHELLS:
        with tempfile.TemporaryDirectory() as tmp:
            run_in(script, shell, Path(tmp))
            assert not (Path(tmp) / "pwned").exists(), (shell, template, value)


REFUSED = [
    ("declare -i n; n={{ v }}", "declares integer"),
    ("n={{ v }}; declare -i n", "declares integer"),
    ("declare -i n; n+='{{ v }}'", "declares integer"),
    ('declare -i n; export n="{{ v }}"', "declares integer"),
    ("declare -i n; for n in {{ v }}; do :; done", "declares integer"),
    ("declare -i n; read n <<< {{ v }}", "declares integer"),
    ("declare -i n; read n <<EOF\n{{ v }}\nEOF", "declares integer"),
    ("declare -i n; read n <<'EOF'\nx {{ v }}\nEOF", "declares integer"),
    ("declare -i n; printf '%s\\n' {{ v }} | read n", "declares integer"),
    ("declare -i n; echo {{ v }} | cat | while read -r n; do :; done", "declares integer"),
    ("declare -i n; printf -v n %s {{ v }}", "declares integer"),
    ("declare -ai a; mapfile a <<< {{ v }}", "declares integer"),
    ("{ typeset -i n; }; n={{ v }}", "declares integer"),
    ("typeset -i n={{ v }}", "'typeset -i'"),
    ("f() { local -i n={{ v }}; }; f", "'local -i'"),
    ("export -i n={{ v }}", "'export -i'"),
    ('declare -ri n="{{ v }}"', "'declare -i'"),
    ("declare -n r={{ v }}", "'declare -i' or '-n'"),
    ("declare -ai a=({{ v }})", "'declare -i'"),
    ("declare a[{{ v }}]=1", "variable name given to declare"),
    ("declare -g {{ v }}=1", "variable name given to declare"),
    ("printf -v 'x[{{ v }}]' %s 1", "variable name given to printf"),
    ("printf -v{{ v }} %s 1", "variable name given to printf"),
    ("read -r {{ v }} <<< x", "variable name given to read"),
    ("unset '{{ v }}'", "unset"),
    ("test -v '{{ v }}'", "'test -v'"),
    ('[ -v "{{ v }}" ]', "'[ -v'"),
    ("[[ -v {{ v }} ]]", "[[ … ]] -v test"),
    ("a=([{{ v }}]=1)", "array subscript"),
    ('declare -a a=(x ["{{ v }}"]=1)', "array subscript"),
    ('echo "$(declare -i n; n={{ v }})"', "declares integer"),
    ("echo `typeset -i n; n='{{ v }}'`", "declares integer"),
    ("if true; then command declare -i n={{ v }}; fi", "'declare -i'"),
]


@pytest.mark.parametrize(("template", "context"), REFUSED)
def test_words_bash_evaluates_are_refused(template: str, context: str) -> None:
    with pytest.raises(TemplateError) as info:
        prepare_shell(template, {"v": "1"}, where="step 'count' (run)")
    assert info.value.exit_code == 2
    assert "step 'count' (run)" in info.value.message and context in info.value.message
    with pytest.raises(TemplateError, match="refusing"):
        check_shell_template(template, where="step 'count' (run)")


@pytest.mark.parametrize(
    "template",
    [
        "declare -i n; n={{ v }}",
        "typeset -i n={{ v }}",
        "f() { local -i n={{ v }}; }; f",
        "declare a[{{ v }}]=1",
        "printf -v 'x[{{ v }}]' %s 1",
        "test -v '{{ v }}'",
        "[ -v '{{ v }}' ]",
        "[[ -v {{ v }} ]]",
        "declare -i n; read n <<< {{ v }}",
        "declare -i n; printf '%s\\n' {{ v }} | { read n; }",
        "a=([{{ v }}]=1)",
        "a=(1); unset '{{ v }}'",
    ],
)
def test_refused_templates_would_run_the_value_in_bash(template: str, tmp_path: Path) -> None:
    """Each refusal is needed: with the value pasted in, bash runs its subscript."""
    if "bash" not in SHELLS:
        pytest.skip("bash is not installed")
    assert refused(template, "x")
    text = template.replace("'{{ v }}'", "{{ v }}").replace("{{ v }}", "'a[$(touch pwned)]'")
    subprocess.run(["bash", "-c", text], cwd=tmp_path, capture_output=True, check=False)
    assert (tmp_path / "pwned").exists()


def test_a_heredoc_read_into_an_integer_would_run_the_value_in_bash(tmp_path: Path) -> None:
    if "bash" not in SHELLS:
        pytest.skip("bash is not installed")
    template = "declare -i n; read n <<'EOF'\n{{ v }}\nEOF"
    assert refused(template, "x")
    text = template.replace("{{ v }}", "a[$(touch pwned)]")
    subprocess.run(["bash", "-c", text], cwd=tmp_path, capture_output=True, check=False)
    assert (tmp_path / "pwned").exists()


ALLOWED = [
    ("declare x={{ v }}; printf '%s' \"$x\"", "bash"),
    ('f() { local x="{{ v }}"; printf \'%s\' "$x"; }; f', None),
    ("a=({{ v }} '{{ v }}'); printf '%s' \"${a[1]}\"", "bash"),
    ("read -r x <<< {{ v }}; printf '%s' \"$x\"", "bash"),
    ("printf '%s\\n' {{ v }} | { read -r x; printf '%s' \"$x\"; }", None),
    ("for x in {{ v }}; do printf '%s' \"$x\"; done", None),
    ("printf -v x %s {{ v }}; printf '%s' \"$x\"", "bash"),
    ("mapfile -t a <<< {{ v }}; printf '%s' \"${a[0]}\"", "bash"),
    ("declare -i n=3; x={{ v }}; printf '%s' \"$x\"", None),
    ("[ {{ v }} = {{ v }} ] && printf '%s' {{ v }}", None),
    ("echo -v >/dev/null; printf '%s' {{ v }}", None),
    ("read -r x <<EOF\n{{ v }}\nEOF\nprintf '%s' \"$x\"", None),
    ("printf '%s\\n' {{ v }} | while read -r x; do printf '%s' \"$x\"; done", None),
]


@pytest.mark.parametrize(("template", "only"), ALLOWED)
@pytest.mark.parametrize("value", ATTACKS)
def test_words_bash_keeps_as_data_carry_the_value_exactly(
    template: str, only: str | None, value: str, tmp_path: Path
) -> None:
    script = prepare_shell(template, {"v": value})
    for shell in SHELLS if only is None else [only]:
        proc = run_in(script, shell, tmp_path)
        assert proc.returncode == 0, (shell, proc.stderr)
        assert proc.stdout == value.encode(), shell
        assert not (tmp_path / "pwned").exists()


# Generated templates: a declaration, a place for the value, quoting, and an enclosing construct.
_DECLARATIONS = st.sampled_from(
    [
        "", "declare -i n; ", "typeset -i n; ", "f() { local -i n; }; ", "declare -n n; ",
        "declare -ai n; ", "export n; ", "readonly -i n 2>/dev/null; ", "declare -- n; ",
    ]
)  # fmt: skip
_PLACES = st.sampled_from(
    [
        "n=V", "n+=V", "n[0]=V", "declare n=V", "local n=V", "export n=V", "typeset -i n=V",
        "declare -i n=V", "declare V=1", "declare -a n=(V)", "n=([V]=1)", "n=(x [1]=V)",
        "for n in V; do :; done", "read n <<< V", "read -r -a n <<< V", "read V <<< x",
        "printf -v n %s V", "printf -v V %s x", "printf -v 'n[V]' x", "mapfile n <<< V",
        "unset V", "test -v V", "[ -v V ]", "[[ -v V ]]", "[[ V -eq 1 ]]", "let n=V",
        "echo $(( V ))", "(( n = V ))", "printf '%s' V", "x=V; printf '%s' \"$x\"", "echo V",
        "cat <<< V", "[ V = x ]", "n=V true", ": V", "read n <<E\nV\nE\n",
        "printf '%s\\n' V | read n", "echo V | while read -r n; do :; done",
    ]
)  # fmt: skip
_QUOTES = st.sampled_from(["{{ v }}", '"{{ v }}"', "'{{ v }}'", "x{{ v }}"])
_WRAPPERS = st.sampled_from(
    [
        "X", "( X )", "{ X; }", "echo \"$(X)\"", "echo $(X)", "if true; then X; fi",
        "g() { X; }; g", "for i in 1; do X; done", "while :; do X; break; done",
        "case a in a) X;; esac", "true && X", "false || X", "X | cat", "echo `X`",
    ]
)  # fmt: skip


@st.composite
def templates(draw: st.DrawFn) -> str:
    place = draw(_PLACES).replace("V", draw(_QUOTES))
    return draw(_DECLARATIONS) + draw(_WRAPPERS).replace("X", place)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(template=templates(), value=st.sampled_from(ATTACKS) | VALUES)
def test_generated_templates_are_refused_or_run_nothing(template: str, value: str) -> None:
    if not refused(template, value):
        runs_nothing_of(template, value)


@pytest.mark.parametrize("value", ATTACKS)
@pytest.mark.parametrize(
    "template",
    [
        "declare -i n; n={{ v }}",
        "printf -v 'x[{{ v }}]' x",
        "[[ -v {{ v }} ]]",
        "declare a[{{ v }}]=1",
        "a=([{{ v }}]=1)",
        "declare -i n; read n <<< {{ v }}",
    ],
)
def test_fixed_templates_are_refused_or_run_nothing(template: str, value: str) -> None:
    assert refused(template, value)
