"""Configuration: models, loading and merging, lazy ``${VAR}`` expansion (SPEC §1)."""

from llm_mux.config.loader import load_config, user_config_dir
from llm_mux.config.models import (
    Backend,
    Defaults,
    Ecosystem,
    Project,
    Role,
    RoleOverride,
    Shared,
    Team,
)
from llm_mux.config.settings import Config

__all__ = [
    "Backend",
    "Config",
    "Defaults",
    "Ecosystem",
    "Project",
    "Role",
    "RoleOverride",
    "Shared",
    "Team",
    "load_config",
    "user_config_dir",
]
