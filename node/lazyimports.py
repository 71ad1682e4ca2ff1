"""Modules of our dependencies that the node never runs, loaded only if something
touches them, so they cost no memory or start-up time.

- `aioice.mdns`, and through it dnspython (about 5 MiB of a daemon's ~80): aioice 0.13
  imports it eagerly, but runs it only to resolve a peer's `.local` candidate or to
  publish an mDNS name, and this node drops `.local` candidates and never publishes
  one (it sends no mDNS packet). At import aioice reads one name from it, the class
  `MDnsProtocol`, in a return annotation; that read gets a placeholder. Any other use
  loads the real module, so behaviour is unchanged (tests/unit/test_lazyimports.py
  pins what aioice reads, and fails if an upgrade reads more).

Must run before aioice is first imported: node/__init__.py calls `install()`."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

# module -> names aioice reads at its own import time (annotations only)
LAZY = {"aioice.mdns": ("MDnsProtocol",)}


class _Placeholder:
    """Stands for a class in an annotation evaluated before the real module loads."""


class LazyModule(types.ModuleType):
    """A module whose code runs on first use of any attribute but the placeholders."""

    def __init__(self, spec: importlib.machinery.ModuleSpec, placeholders: tuple[str, ...]):
        super().__init__(spec.name)
        self.__spec__ = spec
        self.__loader__ = spec.loader
        self.__file__ = spec.origin
        self._lazy_spec = spec
        self._lazy_placeholders = placeholders
        self._lazy_real: types.ModuleType | None = None

    def _lazy_load(self) -> types.ModuleType:
        if self._lazy_real is None:
            spec = self._lazy_spec
            real = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = real
            try:
                spec.loader.exec_module(real)  # type: ignore[union-attr]
            except BaseException:
                sys.modules[spec.name] = self
                raise
            parent = sys.modules.get(spec.name.rpartition(".")[0])
            if parent is not None:
                setattr(parent, spec.name.rpartition(".")[2], real)
            self._lazy_real = real
        return self._lazy_real

    def __getattr__(self, name: str) -> object:
        if name.startswith("_lazy_"):
            raise AttributeError(name)
        if self._lazy_real is None and name in self._lazy_placeholders:
            return _Placeholder
        return getattr(self._lazy_load(), name)


def install() -> None:
    for name, placeholders in LAZY.items():
        parent, _, _ = name.rpartition(".")
        if name in sys.modules or parent in sys.modules:
            continue  # already imported for real: nothing left to save
        parent_spec = importlib.util.find_spec(parent)  # finds it, does not import it
        if parent_spec is None or not parent_spec.submodule_search_locations:
            continue
        spec = importlib.machinery.PathFinder.find_spec(name, list(parent_spec.submodule_search_locations))
        if spec is None or spec.loader is None:
            continue
        sys.modules[name] = LazyModule(spec, placeholders)
