"""Which ecosystem and project the current directory belongs to, and the template context.

Works on anything shaped like the ``[ecosystems.NAME]`` config (the Protocols below), so the
config models and plain dataclasses (:func:`ecosystems_from_mapping`) both fit.

Detection: a project's ``path`` (``~`` expanded, symlinks resolved; a relative path counts from
``base_dir``, by default the home directory) contains the directory when it is that directory
or one of its parents. The deepest containing path wins; among equally deep ones the first in
file order wins, so the answer never depends on chance. ``--ecosystem NAME`` forces the
ecosystem (the project is still detected inside it); ``--ecosystem none`` turns detection off,
unless an ecosystem is really called ``none``.

Template context (``{{ ecosystem.* }}``): outside any ecosystem, and for
``ecosystem.current_project`` outside any project, the value is an empty :class:`ContextDict`:
every key exists (``.name`` is ``""``, lists are empty), it renders as ``""`` and is false in
``{% if %}``. Inside, ``{{ ecosystem }}`` and ``{{ ecosystem.current_project }}`` render as
their names and compare equal to them (``if = "ecosystem == 'myapp'"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from llm_mux.errors import ConfigError, did_you_mean
from llm_mux.values import Value, field

NONE = "none"
PROJECT_KEYS = ("name", "path", "type", "description", "depends_on", "tags")


class ProjectLike(Protocol):
    """A ``[ecosystems.E.projects.P]`` entry."""

    @property
    def description(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def depends_on(self) -> Sequence[str]: ...
    @property
    def tags(self) -> Sequence[str]: ...


class EcosystemLike(Protocol):
    """A ``[ecosystems.E]`` entry."""

    @property
    def description(self) -> str: ...
    @property
    def knowledge(self) -> Sequence[str]: ...
    @property
    def projects(self) -> Mapping[str, ProjectLike]: ...


class ProjectData(Value):
    """Plain project data satisfying :class:`ProjectLike`."""

    description: str = ""
    path: str = ""
    type: str = ""
    depends_on: Sequence[str] = ()
    tags: Sequence[str] = ()


class EcosystemData(Value):
    """Plain ecosystem data satisfying :class:`EcosystemLike`."""

    description: str = ""
    knowledge: Sequence[str] = ()
    projects: Mapping[str, ProjectData] = field(factory=dict)


def ecosystems_from_mapping(data: Mapping[str, Any]) -> dict[str, EcosystemData]:
    """Build plain ecosystems from the parsed ``[ecosystems]`` TOML table (no validation)."""
    return {name: _ecosystem_data(table) for name, table in data.items()}


def _ecosystem_data(table: Mapping[str, Any]) -> EcosystemData:
    projects = {
        name: ProjectData(
            description=str(p.get("description", "")),
            path=str(p.get("path", "")),
            type=str(p.get("type", "")),
            depends_on=tuple(p.get("depends_on", ())),
            tags=tuple(p.get("tags", ())),
        )
        for name, p in dict(table.get("projects", {})).items()
    }
    knowledge = tuple(table.get("knowledge", ()))
    return EcosystemData(str(table.get("description", "")), knowledge, projects)


class Detected(Value):
    """The current ecosystem and, when the directory is inside one, the current project."""

    name: str
    ecosystem: EcosystemLike
    project: str | None = None
    project_path: Path | None = None


def detect_ecosystem(
    ecosystems: Mapping[str, EcosystemLike],
    cwd: Path,
    forced: str | None = None,
    *,
    base_dir: Path | None = None,
) -> Detected | None:
    """The ecosystem and project containing ``cwd`` (see the module docstring), or None."""
    if forced is not None:
        if forced == NONE and NONE not in ecosystems:
            return None
        _check_known(ecosystems, forced)
        ecosystems = {forced: ecosystems[forced]}
    here = _resolved(lambda: cwd.resolve())
    best = _deepest_match(ecosystems, here, base_dir) if here else None
    if best is not None:
        return best
    return Detected(forced, ecosystems[forced]) if forced is not None else None


def _check_known(ecosystems: Mapping[str, EcosystemLike], name: str) -> None:
    if name in ecosystems:
        return
    known = ", ".join(ecosystems) or "none are configured"
    raise ConfigError(
        f"unknown ecosystem '{name}'{did_you_mean(name, ecosystems)}; known ecosystems: {known}"
    )


def _deepest_match(
    ecosystems: Mapping[str, EcosystemLike], here: Path, base_dir: Path | None
) -> Detected | None:
    best: Detected | None = None
    best_depth = -1
    for eco_name, eco in ecosystems.items():
        for project_name, project in eco.projects.items():
            path = project_path(project, base_dir)
            if path is None or not here.is_relative_to(path):
                continue
            if len(path.parts) > best_depth:
                best = Detected(eco_name, eco, project_name, path)
                best_depth = len(path.parts)
    return best


def project_path(project: ProjectLike, base_dir: Path | None = None) -> Path | None:
    """The project's directory: ``~`` expanded, relative to ``base_dir`` (default home)."""
    raw = str(project.path or "").strip()
    if not raw:
        return None
    return _resolved(lambda: ((base_dir or Path.home()) / Path(raw).expanduser()).resolve())


def _resolved(compute: Callable[[], Path]) -> Path | None:
    """The path, or None where it cannot be known (unknown ``~user``, symlink loop, NUL)."""
    try:
        return compute()
    except (OSError, RuntimeError, ValueError):
        return None


class ContextDict(dict[str, Any]):
    """A dict that renders and compares as its ``name`` and is false when the name is empty.

    Keys are reachable as attributes in templates (``ecosystem.current_project.name``).
    """

    def __str__(self) -> str:
        return str(self.get("name", ""))

    def __bool__(self) -> bool:
        return bool(self.get("name"))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.get("name") == other
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None


def empty_project() -> ContextDict:
    """``current_project`` outside any project: every key present and empty."""
    return ContextDict(name="", path="", type="", description="", depends_on=[], tags=[])


def ecosystem_context(detected: Detected | None, *, base_dir: Path | None = None) -> ContextDict:
    """The ``ecosystem`` template value of SPEC §3 (empty when ``detected`` is None)."""
    if detected is None:
        return ContextDict(
            name="", description="", knowledge=[], projects=[], current_project=empty_project()
        )
    eco = detected.ecosystem
    projects = [_project_context(n, p, base_dir) for n, p in eco.projects.items()]
    current = next((p for p in projects if p["name"] == detected.project), empty_project())
    return ContextDict(
        name=detected.name,
        description=str(eco.description or ""),
        knowledge=[str(fact) for fact in eco.knowledge or ()],
        projects=projects,
        current_project=current,
    )


def _project_context(name: str, project: ProjectLike, base_dir: Path | None) -> ContextDict:
    path = project_path(project, base_dir)
    return ContextDict(
        name=name,
        path=str(path) if path else "",
        type=str(project.type or ""),
        description=str(project.description or ""),
        depends_on=[str(d) for d in project.depends_on or ()],
        tags=[str(t) for t in project.tags or ()],
    )
