"""Ecosystem and project detection from the current directory, and the template context."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from llm_mux.ecosystems import (
    ContextDict,
    EcosystemData,
    ProjectData,
    detect_ecosystem,
    ecosystem_context,
    ecosystems_from_mapping,
)
from llm_mux.errors import ConfigError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for sub in ("apps/api/src/deep", "apps/web", "libs/shared", "outside"):
        (tmp_path / sub).mkdir(parents=True)
    return tmp_path


def ecosystems(root: Path) -> dict[str, EcosystemData]:
    return ecosystems_from_mapping(
        {
            "monorepo": {
                "description": "everything",
                "knowledge": ["JWT expires after 1 h"],
                "projects": {
                    "all": {"path": str(root / "apps")},
                    "web": {"path": str(root / "apps" / "web"), "type": "javascript"},
                },
            },
            "backend": {
                "projects": {
                    "api": {
                        "path": str(root / "apps" / "api"),
                        "type": "rust",
                        "depends_on": ["db"],
                        "tags": ["prod"],
                        "description": "REST API",
                    },
                    "shared": {"path": str(root / "libs" / "shared")},
                },
            },
        }
    )


def test_deepest_containing_project_wins_across_ecosystems(tree: Path) -> None:
    found = detect_ecosystem(ecosystems(tree), tree / "apps" / "api" / "src" / "deep")
    assert found is not None
    assert (found.name, found.project) == ("backend", "api")
    assert found.project_path == (tree / "apps" / "api").resolve()
    web = detect_ecosystem(ecosystems(tree), tree / "apps" / "web")
    assert web is not None and (web.name, web.project) == ("monorepo", "web")
    parent = detect_ecosystem(ecosystems(tree), tree / "apps")
    assert parent is not None and (parent.name, parent.project) == ("monorepo", "all")


def test_nothing_outside_every_project(tree: Path) -> None:
    assert detect_ecosystem(ecosystems(tree), tree / "outside") is None
    assert detect_ecosystem(ecosystems(tree), tree) is None
    assert detect_ecosystem({}, tree) is None


def test_a_sibling_with_a_common_prefix_is_not_inside(tree: Path) -> None:
    (tree / "apps" / "web2").mkdir()
    found = detect_ecosystem(ecosystems(tree), tree / "apps" / "web2")
    assert found is not None and found.project == "all"


def test_equal_depth_ties_go_to_the_first_in_file_order(tree: Path) -> None:
    same = {"path": str(tree / "libs" / "shared")}
    first = ecosystems_from_mapping(
        {"b": {"projects": {"x": same}}, "a": {"projects": {"y": same}}}
    )
    found = detect_ecosystem(first, tree / "libs" / "shared")
    assert found is not None and (found.name, found.project) == ("b", "x")


def test_tilde_expands_to_home(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tree / "home"
    (home / "projects" / "myapp-api").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    config = ecosystems_from_mapping(
        {"myapp": {"projects": {"api": {"path": "~/projects/myapp-api"}}}}
    )
    found = detect_ecosystem(config, home / "projects" / "myapp-api")
    assert found is not None and found.project == "api"
    assert ecosystem_context(found)["current_project"]["path"] == str(
        (home / "projects" / "myapp-api").resolve()
    )


def test_symlinked_directories_match_their_target(tree: Path) -> None:
    link = tree / "link-to-api"
    link.symlink_to(tree / "apps" / "api")
    found = detect_ecosystem(ecosystems(tree), link / "src")
    assert found is not None and found.project == "api"


def test_relative_paths_count_from_base_dir(tree: Path) -> None:
    config = ecosystems_from_mapping({"e": {"projects": {"w": {"path": "apps/web"}}}})
    found = detect_ecosystem(config, tree / "apps" / "web", base_dir=tree)
    assert found is not None and found.project == "w"


def test_forced_ecosystem_still_detects_its_project(tree: Path) -> None:
    config = ecosystems(tree)
    inside = detect_ecosystem(config, tree / "apps" / "api", forced="monorepo")
    assert inside is not None and (inside.name, inside.project) == ("monorepo", "all")
    outside = detect_ecosystem(config, tree / "outside", forced="backend")
    assert outside is not None and (outside.name, outside.project) == ("backend", None)
    assert detect_ecosystem(config, tree / "apps" / "api", forced="none") is None


def test_unknown_forced_ecosystem_lists_known_ones(tree: Path) -> None:
    with pytest.raises(ConfigError) as info:
        detect_ecosystem(ecosystems(tree), tree, forced="backnd")
    message = info.value.format()
    assert "unknown ecosystem 'backnd'" in message
    assert "did you mean 'backend'" in message
    assert "monorepo, backend" in message


def test_unusable_paths_are_skipped(tree: Path) -> None:
    config = ecosystems_from_mapping(
        {
            "e": {
                "projects": {
                    "bad": {"path": "bad\x00path"},
                    "empty": {"path": ""},
                    "ok": {"path": str(tree / "libs")},
                }
            }
        }
    )
    found = detect_ecosystem(config, tree / "libs" / "shared")
    assert found is not None and found.project == "ok"


def test_context_holds_every_documented_key(tree: Path) -> None:
    found = detect_ecosystem(ecosystems(tree), tree / "apps" / "api")
    context = ecosystem_context(found)
    assert context["name"] == "backend" and context["knowledge"] == []
    assert [p["name"] for p in context["projects"]] == ["api", "shared"]
    current = context["current_project"]
    assert dict(current) == {
        "name": "api",
        "path": str((tree / "apps" / "api").resolve()),
        "type": "rust",
        "description": "REST API",
        "depends_on": ["db"],
        "tags": ["prod"],
    }


def render(source: str, ecosystem: ContextDict) -> str:
    env = SandboxedEnvironment(undefined=StrictUndefined)
    return env.from_string(source).render(ecosystem=ecosystem)


def test_templates_render_names_and_empty_values_safely(tree: Path) -> None:
    inside = ecosystem_context(detect_ecosystem(ecosystems(tree), tree / "apps" / "web"))
    template = (
        "{{ ecosystem }}|{{ ecosystem.name }}|{{ ecosystem.current_project }}|"
        "{{ ecosystem.current_project.type }}|{{ ecosystem.knowledge | join(',') }}|"
        "{% if ecosystem.current_project %}in{% else %}out{% endif %}|"
        "{{ ecosystem == 'monorepo' }}|{{ ecosystem.projects | map(attribute='name') | join(',') }}"
    )
    assert render(template, inside) == (
        "monorepo|monorepo|web|javascript|JWT expires after 1 h|in|True|all,web"
    )
    outside = ecosystem_context(None)
    assert render(template, outside) == "|||||out|False|"
    assert render("{{ ecosystem.current_project.depends_on | length }}", outside) == "0"


def test_current_project_is_empty_when_forced_outside_it(tree: Path) -> None:
    found = detect_ecosystem(ecosystems(tree), tree / "outside", forced="backend")
    context = ecosystem_context(found)
    assert context["name"] == "backend" and not context["current_project"]
    assert context["current_project"]["name"] == ""


def test_config_models_fit_the_protocol(tree: Path) -> None:
    from llm_mux.config.models import Ecosystem, Project

    models = {
        "e": Ecosystem(projects={"p": Project(path=str(tree / "libs"), tags=["t"])}),
    }
    found = detect_ecosystem(models, tree / "libs" / "shared")
    assert found is not None and found.project == "p"
    assert ecosystem_context(found)["current_project"]["tags"] == ["t"]


def test_plain_dataclasses_fit_too(tree: Path) -> None:
    data = {"e": EcosystemData(projects={"p": ProjectData(path=os.fspath(tree))})}
    found = detect_ecosystem(data, tree / "outside")
    assert found is not None and found.project == "p"
