"""Run a verify command after edits are applied, and build the prompt for another try.

The command goes through the one process runner (own process group, timeout kills the whole
group), so a hanging test suite cannot outlive its timeout. Failure to run at all, a
timeout and an oversized output are all reported as a failed verify, never as a crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from llm_mux.process import (
    CommandNotFound,
    OutputTooLarge,
    ProcessRequest,
    ProcessTimeout,
    run_process,
)
from llm_mux.secrets import redact

OUTPUT_TAIL = 10_000
TIMEOUT_EXIT = 124  # what timeout(1) exits with


@dataclass(frozen=True)
class VerifyResult:
    """``output`` is the tail of stdout followed by stderr (or why the command did not run)."""

    ok: bool
    exit_code: int
    output: str
    timed_out: bool = False


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def _combined(stdout: bytes, stderr: bytes) -> str:
    parts = [data.decode("utf-8", "replace") for data in (stdout, stderr) if data]
    return "\n".join(part.rstrip("\n") for part in parts)


async def run_verify(
    command: str,
    cwd: Path,
    *,
    timeout: float | None,
    env: Mapping[str, str] | None = None,
    tail: int = OUTPUT_TAIL,
) -> VerifyResult:
    """Run ``sh -c command`` in ``cwd``; exit code 0 is success."""
    request = ProcessRequest(argv=("sh", "-c", command), cwd=cwd, env=env, timeout=timeout)
    try:
        outcome = await run_process(request)
    except ProcessTimeout as exc:
        message = f"verify command timed out after {exc.timeout:g}s and was stopped: {command}"
        return VerifyResult(False, TIMEOUT_EXIT, redact(message), timed_out=True)
    except OutputTooLarge as exc:
        return VerifyResult(False, exc.outcome.exit_code, redact(f"verify command: {exc}"))
    except CommandNotFound as exc:
        return VerifyResult(False, 127, redact(f"verify command could not start in {cwd}: {exc}"))
    output = _tail(_combined(outcome.stdout, outcome.stderr), tail)
    return VerifyResult(outcome.exit_code == 0, outcome.exit_code, redact(output))


DEFAULT_RETRY_PROMPT = """\
Your previous edits were applied, but verification failed, so they were rolled back.
The files are back to their original state.

Your previous edits:
{{ edits }}

Output of the verify command:
{{ verify_output }}

Send corrected edits for the original files, in the same format."""

_PLACEHOLDER = re.compile(r"\{\{\s*(verify_output|edits|original_prompt)\s*\}\}")


def retry_prompt(
    original_prompt: str, edits_text: str, verify_output: str, template: str | None
) -> str:
    """The prompt for another try: the original prompt, then the failure.

    ``template`` (a step's ``verify_retry_prompt``) replaces the default failure text; any
    ``{{ verify_output }}``, ``{{ edits }}`` or ``{{ original_prompt }}`` left in it is
    filled in (in one pass, so text inside those values is never substituted again).
    """
    values = {
        "verify_output": verify_output.strip() or "(no output)",
        "edits": edits_text.strip(),
        "original_prompt": original_prompt,
    }
    body = template if template is not None else DEFAULT_RETRY_PROMPT
    filled = _PLACEHOLDER.sub(lambda m: values[m.group(1)], body)
    return f"{original_prompt.rstrip()}\n\n{filled.strip()}\n"
