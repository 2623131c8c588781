"""``llm-mux memory [facts|relationships|entities|runs]``: read the knowledge base.

Reads the database of the current ecosystem (detected from the directory, or ``--ecosystem``;
``default.db`` outside any). Console output is a table, ``--output json`` one document
``{"ecosystem", "database", KIND: [rows]}``, ``--output quiet`` one tab-separated line per
row. Reading never creates a database: a missing one lists nothing.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from llm_mux.cli.options import get_settings, global_options

if TYPE_CHECKING:
    from llm_mux.ecosystems import EcosystemLike
    from llm_mux.memory import MemoryStore

KINDS = ("facts", "relationships", "entities", "runs")
Row = dict[str, Any]

# kind -> (column, header) shown in console and quiet modes
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "facts": (
        ("project", "project"),
        ("fact", "fact"),
        ("source", "source"),
        ("category", "category"),
        ("confidence", "confidence"),
        ("updated_at", "updated"),
    ),
    "relationships": (
        ("from_project", "from"),
        ("to_project", "to"),
        ("type", "type"),
        ("evidence", "evidence"),
        ("updated_at", "updated"),
    ),
    "entities": (
        ("project", "project"),
        ("entity_type", "type"),
        ("entity_name", "name"),
        ("properties", "properties"),
        ("updated_at", "updated"),
    ),
    "runs": (
        ("started_at", "started"),
        ("workflow", "workflow"),
        ("project", "project"),
        ("success", "success"),
        ("duration_ms", "ms"),
        ("error", "error"),
        ("id", "id"),
    ),
}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@click.command("memory")
@click.argument("kind", required=False, default="facts", type=click.Choice(KINDS))
@click.option("--project", "-p", metavar="NAME", help="Only rows about this project.")
@click.option("--search", "-s", metavar="TEXT", help="Only rows containing TEXT (any case).")
@click.option("--limit", "-n", type=click.IntRange(min=1), help="At most N rows, newest first.")
@global_options
def memory_command(kind: str, project: str | None, search: str | None, limit: int | None) -> None:
    """Read the knowledge base that store steps wrote.

    \b
    Examples:
      llm-mux memory                       facts of the current ecosystem
      llm-mux memory facts --project api --output json
      llm-mux memory relationships --search redis
      llm-mux memory runs --limit 5
      llm-mux memory entities --ecosystem myapp
    """
    from llm_mux.config import load_config
    from llm_mux.memory import MemoryStore

    settings = get_settings()
    config = load_config(settings.config)
    ecosystem = resolve_ecosystem(settings.ecosystem, config.ecosystems)
    show_memory(
        kind,
        project=project,
        search=search,
        ecosystem=ecosystem,
        limit=limit,
        output=settings.output,
        store=MemoryStore.configured(ecosystem, config.defaults.memory_url),
    )


def resolve_ecosystem(forced: str | None, ecosystems: Mapping[str, EcosystemLike]) -> str | None:
    """The ecosystem whose memory to read: ``forced``, else the one containing the cwd.

    ``default`` (the database used outside any ecosystem) is accepted even if not configured.
    """
    from llm_mux.ecosystems import detect_ecosystem

    if forced == "default" and forced not in ecosystems:
        return forced
    detected = detect_ecosystem(ecosystems, Path.cwd(), forced)
    return detected.name if detected else None


def show_memory(
    kind: str,
    *,
    project: str | None = None,
    search: str | None = None,
    ecosystem: str | None = None,
    limit: int | None = None,
    output: str = "console",
    store: MemoryStore | None = None,
) -> None:
    """Fetch the rows of ``kind`` and print them in the ``output`` mode."""
    from llm_mux.memory import MemoryStore, ecosystem_key

    store = store or MemoryStore.for_ecosystem(ecosystem)
    eco = ecosystem_key(ecosystem)
    rows = fetch_rows(store, kind, ecosystem=eco, project=project, search=search, limit=limit)
    if output == "json":
        from llm_mux.cli.common import emit_json

        emit_json(json_document(kind, eco, store.location, rows))
    elif output == "quiet":
        from llm_mux.secrets import redact

        for line in quiet_lines(kind, rows):
            click.echo(redact(line))
    else:
        print_table(kind, eco, rows)


def fetch_rows(
    store: MemoryStore,
    kind: str,
    *,
    ecosystem: str,
    project: str | None,
    search: str | None,
    limit: int | None,
) -> list[Row]:
    """The rows of one kind, newest first."""
    if kind == "facts":
        return store.facts(project, None, search, limit, ecosystem=ecosystem)
    if kind == "relationships":
        return store.relationships(project, None, search, limit, ecosystem=ecosystem)
    if kind == "entities":
        return store.entities(project, None, search, limit, ecosystem=ecosystem)
    if kind == "runs":
        return store.runs(limit, project=project, search=search, ecosystem=ecosystem)
    raise click.BadParameter(f"unknown kind '{kind}'; choose from {', '.join(KINDS)}")


def json_document(
    kind: str, ecosystem: str, database: Path | str, rows: Sequence[Row]
) -> dict[str, Any]:
    """The one JSON document of ``--output json``."""
    return {"ecosystem": ecosystem, "database": str(database), kind: list(rows)}


def cell(value: object) -> str:
    """One value as table text: JSON for structures, control characters made visible."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _shown(column: str, value: object) -> str:
    """Console text of a value; times to the second (``2026-01-31 12:00:00``)."""
    text = cell(value)
    return text[:19].replace("T", " ") if column.endswith("_at") else text


def quiet_lines(kind: str, rows: Sequence[Row]) -> list[str]:
    """One tab-separated line per row (tabs and newlines in values shown as spaces)."""
    columns = [name for name, _ in COLUMNS[kind]]
    flat = str.maketrans("\t\n", "  ")
    return ["\t".join(cell(row[c]).translate(flat) for c in columns) for row in rows]


def print_table(kind: str, ecosystem: str, rows: Sequence[Row]) -> None:
    """A table on stdout; values are plain text, never rich markup."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from llm_mux.secrets import redact

    console = Console(file=sys.stdout, soft_wrap=False)
    if not rows:
        console.print(Text(f"No {kind} stored for ecosystem '{cell(ecosystem)}'."))
        return
    table = Table(title=Text(f"{kind.capitalize()} ({cell(ecosystem)})"), title_justify="left")
    for column, header in COLUMNS[kind]:
        table.add_column(header, overflow="fold", no_wrap=column.endswith("_at") or column == "id")
    for row in rows:
        table.add_row(*(Text(redact(_shown(c, row[c]))) for c, _ in COLUMNS[kind]))
    console.print(table)
