"""The plugin manager: built-in providers plus the ``plasmite`` entry points.

Entry points are scanned once, lazily, the first time something outside the
core is asked for; looking up the built-in ``json`` codec never scans, which
keeps one-shot CLI calls and imports fast.

Two environment switches (read at that first scan):

``PLASMITE_LOAD_PLUGINS``
    comma-separated plugins (entry-point or distribution names) to load
    besides the distributions of this project (``FIRST_PARTY``); other
    installed plugins are ignored, and an empty value loads only this
    project's, so a test run is not changed by whatever else is installed.
``PLASMITE_PLUGINS``
    comma-separated importable modules to register as plugins besides the
    entry points (a plugin under development, or one that lives in tests).
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any, Callable

import pluggy

from . import hooks
from .errors import UsageError

ENTRY_POINT_GROUP = "plasmite"
#: Distributions of this repository, loaded whatever PLASMITE_LOAD_PLUGINS says.
FIRST_PARTY = frozenset({
    "plasmite-core", "plasmite-codecs", "plasmite-cli", "plasmite-serve", "plasmite-jq",
    "plasmite-redis", "plasmite-mcp", "plasmite-plasma",
})

_lock = threading.RLock()
_pm: pluggy.PluginManager | None = None


class _Builtins:
    """The core's own providers, registered through the same hooks."""

    @hooks.hookimpl
    def register_codecs(self, register):
        from .codecs import JSON

        register("json", JSON)


def get_plugin_manager() -> pluggy.PluginManager:
    global _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager(hooks.PROJECT)
            pm.add_hookspecs(hooks)
            pm.register(_Builtins(), name="plasmite_core.builtins")
            _load_entry_points(pm)
            _load_modules(pm)
            _pm = pm
        return _pm


def _names(var: str) -> list[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return [n.strip() for n in value.split(",") if n.strip()]


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _names("PLASMITE_LOAD_PLUGINS")
    if allowed is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ""
        if dist in FIRST_PARTY or ep.name in allowed or dist in allowed:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)


def _load_modules(pm: pluggy.PluginManager) -> None:
    for module in _names("PLASMITE_PLUGINS") or []:
        try:
            plugin = importlib.import_module(module)
        except ImportError as exc:
            raise UsageError(f"cannot import plugin module {module!r} named in PLASMITE_PLUGINS: {exc}",
                             hint="fix PLASMITE_PLUGINS or the module's PYTHONPATH") from None
        if not pm.is_registered(plugin):  # an installed plugin may be named too
            pm.register(plugin, name=module)


def reset() -> None:
    """Forget loaded plugins (tests; after installing or removing a plugin)."""
    global _pm
    with _lock:
        _pm = None
        _cache.clear()


_cache: dict[str, dict[str, Any]] = {}


def _collect(hook_name: str) -> dict[str, Any]:
    with _lock:
        if hook_name in _cache:
            return _cache[hook_name]
        found: dict[str, Any] = {}

        def register(name: str, item: Any) -> None:
            found.setdefault(name, item)

        getattr(get_plugin_manager().hook, hook_name)(register=register)
        _cache[hook_name] = found
        return found


def codecs() -> dict[str, Any]:
    return _collect("register_codecs")


def codec(name: str):
    if name == "json":
        from .codecs import JSON

        return JSON
    found = codecs().get(name)
    if found is None:
        raise UsageError(
            f"unknown codec {name!r}",
            hint=f"installed codecs: {', '.join(sorted(codecs()))}; "
            "pip install plasmite-codecs for msgpack and lite3",
        )
    return found


def filters() -> dict[str, Callable[[str], Callable[[dict], bool]]]:
    return _collect("register_filters")


def filter_factory(name: str):
    found = filters().get(name)
    if found is None:
        hint = "pip install plasmite-jq" if name == "jq" else f"installed filters: {', '.join(sorted(filters())) or 'none'}"
        raise UsageError(f"no {name!r} filter is installed", hint=hint)
    return found


def transports() -> dict[str, Callable[..., Any]]:
    return _collect("register_transports")


def transport(scheme: str):
    found = transports().get(scheme.lower())
    if found is None:
        redis = scheme.lower() in ("redis", "rediss")
        raise UsageError(
            f"no transport for {scheme}:// pool refs is installed",
            hint="pip install plasmite-redis for redis and rediss pool URLs" if redis
            else "pip install plasmite-serve for http and https pool URLs",
        )
    return found


def serve_routes() -> dict[str, Callable[[Any], Any]]:
    return _collect("register_serve_routes")


def register_commands(cli) -> None:
    get_plugin_manager().hook.register_commands(cli=cli)


def list_plugins() -> list[dict[str, Any]]:
    """Installed plugins: name, distribution, version and the hooks they implement."""
    pm = get_plugin_manager()
    dists = {id(p): d for p, d in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        hooks_ = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        out.append(
            {
                "name": name,
                "distribution": dist.metadata["name"] if dist is not None else "plasmite-core",
                "version": dist.version if dist is not None else _core_version(),
                "hooks": hooks_,
            }
        )
    return sorted(out, key=lambda p: p["name"])


def _core_version() -> str:
    from . import __version__

    return __version__
