"""Builds the pluggy manager: built-ins first, then the `bondscope` entry-point group.

Each plugin is loaded and asked for its importers, segmenters and exporters on its own, so one
broken plugin is reported by name and disabled while everything else keeps working. Tests build a
fresh `Plugins` per test instead of sharing global state.

Code of plugins that are not built in runs under a time limit where it only computes on the data
it is given (detect, each record an importer reads, segment, predict): one that hangs past
`timeout` seconds (`BONDSCOPE_PLUGIN_TIMEOUT`, default 120) is disabled, so it cannot hold the
project's write lock forever. Its thread is abandoned, not killed (Python cannot kill threads).
"""

from __future__ import annotations

import importlib
import os
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, TypeVar

import pluggy
from bondscope import hookspecs
from bondscope.hookspecs import (
    Exporter,
    Importer,
    LLMBackend,
    Metric,
    Prelabeler,
    Segmenter,
    Synthesizer,
)

ENTRY_POINT_GROUP = "bondscope"
LOAD_PLUGINS_ENV = "BONDSCOPE_LOAD_PLUGINS"
TIMEOUT_ENV = "BONDSCOPE_PLUGIN_TIMEOUT"
DEFAULT_TIMEOUT_S = 120.0
BUILTIN_ORIGIN = "built-in"

BUILTIN_PLUGINS = (
    "bondscope.plugins.bondscope_jsonl",
    "bondscope.plugins.thought_anchors",
    "bondscope.plugins.r1_json",
    "bondscope.plugins.chat",
    "bondscope.plugins.step_lists",
    "bondscope.plugins.plain_text",
    "bondscope.plugins.paragraph_segmenter",
    "bondscope.plugins.sentence_segmenter",
    "bondscope.plugins.given_segmenter",
    "bondscope.plugins.parquet_export",
    "bondscope.plugins.csv_export",
    "bondscope.plugins.behavior_distribution",
    "bondscope.plugins.transition_matrix",
    "bondscope.plugins.openai_compatible",
    "bondscope.plugins.llm_prelabeler",
    "bondscope.plugins.mole_syn",
    "bondscope.plugins.sft_chat_export",
    "bondscope.plugins.label_studio",
    "bondscope.plugins.doccano",
    "bondscope.plugins.prodigy",
    "bondscope.plugins.keyword_prelabeler",
    "bondscope.plugins.onnx_prelabeler",
)

KINDS: dict[str, tuple[str, type]] = {
    "importer": ("register_importers", Importer),
    "segmenter": ("register_segmenters", Segmenter),
    "exporter": ("register_exporters", Exporter),
    "metric": ("register_metrics", Metric),
    "prelabeler": ("register_prelabelers", Prelabeler),
    "llm_backend": ("register_llm_backends", LLMBackend),
    "synthesizer": ("register_synthesizers", Synthesizer),
}

T = TypeVar("T")


class PluginTimeout(RuntimeError):
    """Plugin code did not return within the time limit."""


class PluginError(RuntimeError):
    """A plugin raised; it has been disabled for this session."""

    def __init__(self, plugin: str, error: BaseException) -> None:
        self.plugin = plugin
        self.error = error
        super().__init__(f"plugin {plugin!r} failed and was disabled: {error!r}")


@dataclass
class PluginInfo:
    name: str
    origin: str  # "built-in", or the distribution that provided it
    provides: list[str] = field(default_factory=list)


@dataclass
class Failure:
    plugin: str
    error: str
    detail: str


class Plugins:
    """The loaded plugins and what they registered, keyed by kind and name."""

    def __init__(self, *, load_entry_points: bool = True, extra: Iterable[object] = ()) -> None:
        self.pm = pluggy.PluginManager("bondscope")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[Failure] = []
        self.origins: dict[str, str] = {}
        self.timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
        for module_name in BUILTIN_PLUGINS:
            self._register(importlib.import_module(module_name), module_name, BUILTIN_ORIGIN)
        if load_entry_points:
            self._load_entry_points()
        for plugin in extra:
            name = getattr(plugin, "__name__", type(plugin).__name__)
            self._register(plugin, name, "registered in code")
        self._items: dict[str, dict[str, Any]] | None = None
        self._owners: dict[tuple[str, str], str] = {}

    def register(self, plugin: object, name: str | None = None) -> None:
        """Add a plugin after start-up (used by tests and by the docs' worked example)."""
        name = name or getattr(plugin, "__name__", type(plugin).__name__)
        self._register(plugin, name, "registered in code")
        self._items = None

    def _register(self, plugin: object, name: str, origin: str) -> None:
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except Exception as error:  # a malformed plugin must not stop the others
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._fail(name, error)
            return
        self.origins[name] = origin

    def _load_entry_points(self) -> None:
        wanted = os.environ.get(LOAD_PLUGINS_ENV)
        allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and ep.name not in allowed:
                continue
            try:
                plugin = ep.load()
            except Exception as error:
                self._fail(ep.name, error)
                continue
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            self._register(plugin, ep.name, dist)

    def _fail(self, plugin: str, error: BaseException) -> None:
        self.failures.append(
            Failure(plugin, f"{type(error).__name__}: {error}", traceback.format_exc())
        )
        if self.pm.get_plugin(plugin) is not None:
            self.pm.unregister(name=plugin)
        self.pm.set_blocked(plugin)
        self._items = None

    def disable(self, plugin: str, error: BaseException) -> PluginError:
        """Record a plugin that raised while working and take it out of this session."""
        self._fail(plugin, error)
        return PluginError(plugin, error)

    # -- what the plugins provide ----------------------------------------------------------------

    def _collect(self) -> dict[str, dict[str, Any]]:
        if self._items is not None:
            return self._items
        items: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self._owners = {}
        for kind, (hook_name, protocol) in KINDS.items():
            hook = getattr(self.pm.hook, hook_name)
            # get_hookimpls() is in registration order: built-ins come first and keep their names.
            for impl in hook.get_hookimpls():
                found: list[Any] = []
                try:
                    impl.function(register=found.append)
                    for item in found:
                        _check_item(item, protocol, kind)
                except Exception as error:
                    self._fail(impl.plugin_name, error)
                    continue
                for item in found:
                    if item.name in items[kind]:
                        owner = self._owners[(kind, item.name)]
                        self.failures.append(
                            Failure(
                                impl.plugin_name,
                                f"{kind} {item.name!r} is already provided by {owner!r}; ignored",
                                "",
                            )
                        )
                        continue
                    items[kind][item.name] = item
                    self._owners[(kind, item.name)] = impl.plugin_name
        self._items = items
        return items

    def importers(self) -> dict[str, Importer]:
        return self._collect()["importer"]

    def segmenters(self) -> dict[str, Segmenter]:
        return self._collect()["segmenter"]

    def exporters(self) -> dict[str, Exporter]:
        return self._collect()["exporter"]

    def metrics(self) -> dict[str, Metric]:
        return self._collect()["metric"]

    def prelabelers(self) -> dict[str, Prelabeler]:
        return self._collect()["prelabeler"]

    def llm_backends(self) -> dict[str, LLMBackend]:
        return self._collect()["llm_backend"]

    def synthesizers(self) -> dict[str, Synthesizer]:
        return self._collect()["synthesizer"]

    def is_active(self, kind: str, name: str) -> bool:
        """False once the plugin providing it has been disabled."""
        return name in self._collect()[kind]

    def owner(self, kind: str, name: str) -> str:
        self._collect()
        return self._owners[(kind, name)]

    def get(self, kind: str, name: str) -> Any:
        available = self._collect()[kind]
        if name not in available:
            known = ", ".join(sorted(available)) or "none"
            raise LookupError(f"unknown {kind} {name!r} (available: {known})")
        return available[name]

    def call(
        self, kind: str, name: str, function: Callable[..., T], *args: Any, limited: bool = False
    ) -> T:
        """Run plugin code; if it raises anything but bad-input errors, disable its plugin.

        `limited`: the code only computes on its arguments (never touches the store), so it may
        run under the time limit (see the module doc). Cancelled passes through: it comes from
        the caller's progress (e.g. an exporter pulling from a generator that checks for
        cancel), not from a fault of the plugin.
        """
        from bondscope.domain import InputError
        from bondscope.progress import Cancelled

        try:
            if limited:
                return self.limited(kind, name, function, *args)
            return function(*args)
        except (InputError, Cancelled, KeyboardInterrupt):
            raise
        except Exception as error:
            raise self.disable(self.owner(kind, name), error) from error

    def limited(self, kind: str, name: str, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)`, raising PluginTimeout if a plugin that is not built in takes longer
        than `self.timeout`; whatever the function raises is re-raised here."""
        if self.origins.get(self.owner(kind, name)) == BUILTIN_ORIGIN:
            return function(*args)
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["value"] = function(*args)
            except BaseException as error:  # re-raised in the caller's thread
                outcome["error"] = error

        worker = threading.Thread(target=work, name=f"plugin {kind} {name}", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise PluginTimeout(f"{kind} {name!r} did not return within {self.timeout:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def register_commands(self, cli: Any) -> None:
        """Let each plugin add its CLI commands; one that raises is listed as failed and, like a
        failing plugin of any other hook, provides nothing: the commands it added before it
        raised are taken out again."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            before = dict(cli.commands)
            try:
                impl.function(cli=cli)
            except Exception as error:
                cli.commands.clear()
                cli.commands.update(before)
                self._fail(impl.plugin_name, error)

    def describe(self) -> list[PluginInfo]:
        items = self._collect()
        infos = {name: PluginInfo(name, origin) for name, origin in self.origins.items()}
        for (kind, item_name), owner in sorted(self._owners.items()):
            if owner in infos and item_name in items[kind]:
                infos[owner].provides.append(f"{kind}:{item_name}")
        return [info for name, info in infos.items() if self.pm.get_plugin(name) is not None]


def _check_item(item: object, protocol: type, kind: str) -> None:
    if not isinstance(item, protocol):
        raise TypeError(f"{item!r} does not implement the {kind} interface ({protocol.__name__})")
    if not isinstance(getattr(item, "name", None), str) or not item.name:
        raise TypeError(f"{kind} {item!r} has no name")
