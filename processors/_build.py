"""Building state models from values the fold already trusts, without validating them again.

The fold makes a few models per event (a sample record, its judgement, effects,
chart series) from fields that come out of a validated event or out of the
fold's own arithmetic.  Pydantic's validating constructor costs several
microseconds each, and ``model_construct`` spends most of that on alias handling
these models do not use; at tens of thousands of events a second that is a large
share of the budget.  ``builder(Model)`` returns a constructor that fills
defaults and sets the same internals ``model_construct`` sets, nothing more.
Restoring a snapshot still goes through full validation.
"""
from __future__ import annotations

import copy
import functools
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ConfigDict

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
_set = object.__setattr__


_MISSING = object()

_EVERY: dict[type, set[str]] = {}


def every_field(cls: type[BaseModel]) -> set[str]:
    """The one set of ``cls``'s field names that its fully set instances share as ``__pydantic_fields_set__``
    (one entry per model class: bounded by the code, not by the data)."""
    every = _EVERY.get(cls)
    if every is None:
        every = _EVERY[cls] = set(cls.__pydantic_fields__)
    return every


def share_field_sets(root: Any) -> None:
    """Give every model under ``root`` that has all its fields set its class's one set, as ``builder``
    builds them.  Validation (a snapshot restored) makes a set per model: over half of the memory of a
    restored state, that a state built by the fold does not hold.  Nothing a model says changes."""
    stack = [root]
    pop, push = stack.pop, stack.extend
    while stack:
        o = pop()
        if isinstance(o, BaseModel):
            every = every_field(type(o))
            if o.__pydantic_fields_set__ == every:
                _set(o, "__pydantic_fields_set__", every)
            push(v for v in o.__dict__.values() if isinstance(v, _NESTING))
        elif isinstance(o, dict):
            push(v for v in o.values() if isinstance(v, _NESTING))
        else:
            push(v for v in o if isinstance(v, _NESTING))


_NESTING = (BaseModel, dict, list, tuple)


def compact(root: Any, shared: tuple[type[BaseModel], ...]) -> None:
    """Make a state read back from JSON share what the fold's own state shares: one field-name set per
    model class, one object per distinct string, and one model per distinct value of the ``shared``
    classes (frozen models of scalars, e.g. an item's judgement: the fold memoises it, so a thousand ND
    results of a year are one object).  Parsed, each is its own copy — a restored state took 2.3 times
    the memory of the same state folded (bench/bench_memory.py).  Only equal values are merged (equal by
    ``repr``: -0.0 stays apart from 0.0, 1 from 1.0), so nothing a model says changes."""
    strings: dict[str, str] = {}
    models: dict[tuple[Any, ...], BaseModel] = {}
    share_str = strings.setdefault

    def one(o: Any) -> Any:
        if type(o) is str:
            return share_str(o, o)
        if isinstance(o, BaseModel):
            d = o.__dict__
            for k, v in d.items():
                if isinstance(v, _INNER):
                    w = one(v)
                    if w is not v:
                        d[k] = w
            every = every_field(type(o))
            if o.__pydantic_fields_set__ == every:
                _set(o, "__pydantic_fields_set__", every)
            if isinstance(o, shared):
                return models.setdefault((type(o), *map(repr, d.values())), o)
            return o
        if isinstance(o, dict):
            for k, v in o.items():
                if isinstance(v, _INNER):
                    w = one(v)
                    if w is not v:
                        o[k] = w
            return o
        if isinstance(o, list):
            for i, v in enumerate(o):
                if isinstance(v, _INNER):
                    o[i] = one(v)
            return o
        if isinstance(o, tuple):
            out = tuple(one(v) if isinstance(v, _INNER) else v for v in o)
            return o if all(a is b for a, b in zip(out, o)) else out
        return o

    one(root)


_INNER = (str, BaseModel, dict, list, tuple)


def builder(cls: type[M]) -> Callable[..., M]:
    """A keyword-only constructor for ``cls``, generated like a dataclass ``__init__``:
    a missing or misspelt field is a ``TypeError``, defaults and factories apply."""
    fields = cls.__pydantic_fields__
    if any(f.alias is not None or f.validation_alias is not None for f in fields.values()):
        raise TypeError(f"{cls.__name__}: builder() does not handle aliases")
    if cls.__pydantic_post_init__ or cls.model_config.get("extra") == "allow":
        raise TypeError(f"{cls.__name__}: builder() does not run post-init hooks or keep extras")
    # Every instance built here has every field set, so one set of the names serves them all: a set
    # per instance was over half the fold's state (~1.2 KB a model: 23 of 44 MB after ten years of a
    # county, bench/bench_memory.py).  Sharing is safe because pydantic only ever adds a field name
    # to it (already there: no change) or copies it first (``model_copy``, ``copy.copy``).
    ns: dict[str, Any] = {"_new": _new, "_set": _set, "_cls": cls, "_MISSING": _MISSING, "_every": every_field(cls)}
    required: list[str] = []
    optional: list[str] = []
    lines: list[str] = []
    for i, (name, f) in enumerate(fields.items()):
        mutable_default = isinstance(f.default, (dict, list, set, bytearray))
        if f.default_factory is not None or mutable_default:
            # pydantic copies a mutable default per instance: so does this
            ns[f"_factory{i}"] = f.default_factory or functools.partial(copy.deepcopy, f.default)
            optional.append(f"{name}=_MISSING")
            lines.append(f"    if {name} is _MISSING:\n        {name} = _factory{i}()")
        elif f.is_required():
            required.append(name)
        else:
            ns[f"_default{i}"] = f.default
            optional.append(f"{name}=_default{i}")
    values = ", ".join(f"{name!r}: {name}" for name in fields)
    src = "\n".join([
        f"def build(*, {', '.join(required + optional)}):",
        *lines,
        "    m = _new(_cls)",
        f"    _set(m, '__dict__', {{{values}}})",
        "    _set(m, '__pydantic_fields_set__', _every)",
        "    _set(m, '__pydantic_extra__', None)",
        "    _set(m, '__pydantic_private__', None)",
        "    return m",
    ])
    exec(src, ns)  # noqa: S102 - source built above from the model's own field names
    build = ns["build"]
    build.__name__ = build.__qualname__ = f"build_{cls.__name__}"
    return build  # type: ignore[no-any-return]

class FoldState(BaseModel):
    """Base of the fold's mutable state models (credit files, charts, risk inputs).

    The fold assigns a few attributes per event (counters, latest dates).  Pydantic's
    ``__setattr__`` looks up a handler per call; these models never validate on
    assignment, are not frozen and have no private attributes, so assignment is a
    dict store — still refusing a name that is not a field, as ``extra="forbid"`` does.
    """

    model_config = ConfigDict(extra="forbid")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in type(self).__pydantic_fields__:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        # (``__pydantic_fields_set__`` is left alone: it only serves ``exclude_unset``, which
        # no state dump uses, and keeping it costs a set insertion per assignment)
        self.__dict__[name] = value
