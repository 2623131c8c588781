"""Finding the workflow file that ``llm-mux run NAME`` means (SPEC §2, Lookup).

In order: ``NAME`` as a path to a ``.toml`` file; ``NAME.toml`` in the project's
``.llm-mux/workflows/`` (the nearest directory walking up that has it); then the user's
``$XDG_CONFIG_HOME/llm-mux/workflows/``. An unknown name is an error that lists what exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from llm_mux.errors import UsageError, did_you_mean

WORKFLOWS_DIR = "workflows"
SUFFIX = ".toml"


def search_dirs(cwd: Path, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Every workflow directory that exists, nearest project first, the user's last."""
    from llm_mux.config.loader import PROJECT_DIR, user_config_dir

    found = [d / PROJECT_DIR / WORKFLOWS_DIR for d in (cwd, *cwd.parents)]
    found.append(user_config_dir(environ) / WORKFLOWS_DIR)
    return [d for d in dict.fromkeys(found) if d.is_dir()]


def available(cwd: Path, environ: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Workflow name → file, nearest definition winning."""
    names: dict[str, Path] = {}
    for directory in search_dirs(cwd, environ):
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            if path.is_file():
                names.setdefault(path.stem, path)
    return names


def _looks_like_path(name: str) -> bool:
    return name.endswith(SUFFIX) or "/" in name or name.startswith(".")


def find_workflow(
    name: str, cwd: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The file ``name`` refers to; a :class:`UsageError` listing the known ones otherwise."""
    here = (cwd or Path.cwd()).resolve()
    if not name.strip():
        raise UsageError("a workflow name is required")
    candidate = here / Path(name).expanduser()
    if _looks_like_path(name):
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            raise _directory(name)
        raise UsageError(f"workflow file not found: {name}")
    for directory in search_dirs(here, environ):
        path = directory / f"{name}{SUFFIX}"
        if path.is_file():
            return path
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        raise _directory(name)
    raise _unknown(name, available(here, environ))


def _directory(name: str) -> UsageError:
    return UsageError(
        f"'{name}' is a directory, not a workflow file",
        hint="name a workflow .toml file, or a workflow by name (e.g. 'review' for "
        ".llm-mux/workflows/review.toml)",
    )


def _unknown(name: str, known: dict[str, Path]) -> UsageError:
    hint = did_you_mean(name, known)
    if known:
        listing = "\n".join(f"  {n}  ({p})" for n, p in sorted(known.items()))
        return UsageError(f"unknown workflow '{name}'{hint}; available workflows:\n{listing}")
    return UsageError(
        f"unknown workflow '{name}': no workflows found",
        hint=f"create .llm-mux/workflows/{name}{SUFFIX} in the project (or in "
        "~/.config/llm-mux/workflows/), or pass the path of a .toml file",
    )
