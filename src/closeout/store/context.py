"""What every step needs, opened once per task: settings, registry, catalogue, store."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from closeout.core.catalogue import Catalogue, load_catalogue
from closeout.core.registry import Registry, load_registry
from closeout.core.settings import Settings, load_settings
from closeout.store.database import Store


@dataclass
class Context:
    settings: Settings

    @classmethod
    def from_env(cls) -> Context:
        return cls(load_settings())

    @cached_property
    def registry(self) -> Registry:
        return load_registry(self.settings.registry_path)

    @cached_property
    def catalogue(self) -> Catalogue:
        return load_catalogue(self.settings.catalogue_path, self.settings.checks_path)

    @cached_property
    def store(self) -> Store:
        return Store(self.settings.db_url, self.settings.include_dir / "sql")

    def unit_names(self) -> dict[str, str]:
        return {u.code: u.name for u in self.registry.all_units}
