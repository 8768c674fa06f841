"""One small registry for every open set of choices (datasets, schemes, models, ...).

Names are stable snake_case strings; configs refer to components by name, never by
pickled objects. Registering a name twice is an error, so two plugins cannot
silently shadow each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mekit.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories (classes or functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: ``@REG.register("name", help="...")``."""

        def deco(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return deco

    def add(self, name: str, obj: T, **meta: Any) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        self._meta[name] = dict(meta)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise ConfigError(f"unknown {self.kind} {name!r}; expected one of: {known}") from None

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


# -- checking keyword parameters against what they configure ----------------------------------
# Free-form ``params`` sections of a config are handed to a registered function or class as
# keyword arguments. Checking them against its signature when the config is loaded turns a
# TypeError deep inside a run (or a value silently ignored) into one line naming the key.

def resolve(obj: Any) -> Any:
    """The object a lazy ``"module:attribute"`` registry entry names (other entries as they are)."""
    if isinstance(obj, str) and ":" in obj:
        import importlib

        mod, attr = obj.split(":", 1)
        return getattr(importlib.import_module(mod), attr)
    return obj


def _hints(fn: Any) -> dict[str, Any]:
    """Evaluated annotations of ``fn`` (a class: of its ``__init__``); one that cannot be
    evaluated (a name only imported for type checkers) counts as ``Any``."""
    import typing

    target = fn.__init__ if isinstance(fn, type) else fn
    try:
        return typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - fall back to one annotation at a time
        pass
    out: dict[str, Any] = {}
    glb = getattr(target, "__globals__", {})
    for name, ann in getattr(target, "__annotations__", {}).items():
        if isinstance(ann, str):
            try:
                ann = eval(ann, glb)  # noqa: S307 - annotations of the package's own code
            except Exception:  # noqa: BLE001
                ann = Any
        out[name] = ann
    return out


def keyword_parameters(fn: Any) -> tuple[dict[str, tuple[Any, Any]], bool]:
    """``({name: (annotation, default)}, open)`` of the keyword arguments ``fn`` accepts.

    ``open`` is True when ``fn`` takes ``**kwargs`` that cannot be followed, so unknown keys
    cannot be refused. A factory that forwards ``**kwargs`` to the class its return annotation
    names (``def ststnet(num_classes=3, **kwargs) -> STSTNet``) accepts that class's keywords.
    """
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: anything goes
        return {}, True
    hints = _hints(fn)
    params: dict[str, tuple[Any, Any]] = {}
    open_ = False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            open_ = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            params[p.name] = (hints.get(p.name, Any), p.default)
    ret = hints.get("return")
    if open_ and isinstance(ret, type) and ret is not fn:
        inner, open_ = keyword_parameters(ret)
        for k, v in inner.items():
            params.setdefault(k, v)
    return params, open_


def describe_type(tp: Any) -> str:
    """``int`` -> ``'an integer'``: what a config value of this annotation should be."""
    import collections.abc
    import types
    import typing

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        parts = [describe_type(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if tp is type(None) or tp is None:
        return "null"
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    if tp in names:
        return names[tp]
    if tp in (tuple, list) or origin in (tuple, list, collections.abc.Sequence, collections.abc.MutableSequence):
        if origin is tuple and args and not (len(args) == 2 and args[1] is ...):
            return f"a list of {len(args)} values"
        return f"a list ({describe_type(args[0])} each)" if args and args[0] is not Any else "a list"
    if tp is dict or origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def type_accepts(tp: Any, value: Any) -> bool:
    """Whether a config value (what YAML gives: scalars, lists, mappings, null) fits annotation
    ``tp``. Annotations it cannot judge (a tensor, a callable) accept anything: the check is for
    the mistakes a config can make, not a type checker."""
    import collections.abc
    import inspect
    import types
    import typing

    if tp is Any or tp is inspect.Parameter.empty or isinstance(tp, typing.TypeVar):
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(type_accepts(a, value) for a in args)
    if origin is typing.Literal:
        return value in args
    if tp is type(None) or tp is None:
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp in (tuple, list) or origin in (tuple, list, collections.abc.Sequence, collections.abc.MutableSequence):
        # a string is a sequence too, but never what a list parameter means
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and not (len(args) == 2 and args[1] is ...):
            return len(value) == len(args) and all(type_accepts(a, v) for a, v in zip(args, value, strict=True))
        return not args or all(type_accepts(args[0], v) for v in value)
    if tp is dict or origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        return isinstance(value, dict)
    return True


def _suggest(key: str, names: Any) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_params(fn: Any, params: Any, where: str, owner: str,
                 reserved: dict[str, str] | None = None) -> None:
    """Refuse keys of ``params`` that ``fn`` does not accept, values that do not fit its
    annotations, and required parameters left out, with a ConfigError naming ``where.key``.

    ``reserved``: keywords ``fn`` accepts that mekit fills itself, each with the reason
    (``{"seed": "set by the config's seed"}``); giving one in ``params`` is refused too.
    """
    if params is None:
        return
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: expected a mapping of parameters for {owner}, got {params!r}")
    accepted, open_ = keyword_parameters(fn)
    reserved = reserved or {}
    settable = sorted(k for k in accepted if k not in reserved)
    for key, value in params.items():
        if key in reserved:
            raise ConfigError(f"{where}.{key}: not a parameter to set here ({reserved[key]})")
        if key not in accepted:
            if open_:
                continue
            if not settable:
                raise ConfigError(f"{where}.{key}: {owner} takes no parameters")
            raise ConfigError(f"{where}.{key}: unknown parameter of {owner}{_suggest(str(key), settable)}; "
                              f"expected some of {settable}")
        tp = accepted[key][0]
        if not type_accepts(tp, value):
            raise ConfigError(f"{where}.{key}: expected {describe_type(tp)}, got {value!r}")
    import inspect

    missing = [k for k, (_, default) in accepted.items()
               if default is inspect.Parameter.empty and k not in reserved and k not in params]
    if missing:
        raise ConfigError(f"{where}: {owner} needs {missing[0]!r} (required parameters: {missing})")
