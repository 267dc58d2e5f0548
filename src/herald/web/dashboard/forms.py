"""HTML forms built from the API's own request models, and form posts turned back into API bodies.

A dashboard form is never a second definition of an object: its fields are the request model's fields (name,
type, choices, description, required), so a field added to the API appears in the form, and the API's 422
answers (``errors[].field``) land beside the field they name. Plain HTML controls are used for every type, so
the forms work without JavaScript:

- text, numbers, URLs: an ``<input>``; a name, key or token: an ``<input type="password">`` never filled back;
- a choice (``Literal`` or ``Enum``): a ``<select>``; a yes/no: a checkbox;
- a list of words: a ``<textarea>``, one per line; a ``dict[str, str]``: ``name: value`` per line;
- a nested model: its fields in a ``<fieldset>`` (``quiet_hours.start``); anything deeper: JSON in a textarea.

Values the form cannot even parse (JSON that is not JSON) are reported here; everything else is the API's to
judge, in its own words.
"""

from __future__ import annotations

import enum
import json
import types
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from herald.web.dashboard.session import Form

SECRET_WORDS = ("secret", "password", "token", "api_key", "credentials", "private_key")
BLANK_ROWS = 3  # rows a new list of small objects offers; saving and editing again offers more
MAX_ROWS = 20
LONG_TEXT = ("content", "template", "body", "text", "message", "description", "prompt", "system_prompt")


@dataclass(frozen=True)
class Field:
    """One control of a form: ``name`` is the API field's path (``quiet_hours.start``)."""

    name: str
    label: str
    kind: str  # text, number, url, password, textarea, select, checkbox, lines, pairs, json, group
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()
    children: tuple[Field, ...] = ()
    integer: bool = False
    default: Any = None
    max_rows: int = 0  # a list of small objects ("rows"): how many it may hold

    @property
    def dom_id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")

    @property
    def secret(self) -> bool:
        return self.kind == "password"


@dataclass
class FormState:
    """What a form shows: values by field name, and errors by field name ("" for the form as a whole)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    # A list of small objects ("rows"): how many rows its table shows, and which row each item sent came from
    # (blank rows are not sent, so the API's ``addresses.1`` may be the form's third row).
    rows: dict[str, int] = field(default_factory=dict)
    row_map: dict[str, list[int]] = field(default_factory=dict)

    def row_count(self, name: str) -> int:
        return self.rows.get(name, BLANK_ROWS)

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    @property
    def failed(self) -> bool:
        return bool(self.errors)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``Annotated`` and ``None``, and whether ``None`` was allowed."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            if len(args) != 1:
                return annotation, optional
            annotation = args[0]
        else:
            return annotation, optional


def _label(name: str) -> str:
    return name.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def _is_secret(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return any(word in leaf for word in SECRET_WORDS)


def _kind(annotation: Any) -> str:
    """The control a (non-secret, non-nested) type is edited with."""
    origin = get_origin(annotation)
    if annotation is bool:
        kind = "checkbox"
    elif annotation in (int, float):
        kind = "number"
    elif origin is Literal or (isinstance(annotation, type) and issubclass(annotation, enum.Enum)):
        kind = "select"
    elif origin is list and _unwrap(get_args(annotation)[0])[0] is str:
        kind = "lines"
    elif origin is dict and get_args(annotation) == (str, str):
        kind = "pairs"
    elif annotation is str:
        kind = "text"
    elif "Url" in getattr(annotation, "__name__", ""):
        kind = "url"
    else:
        kind = "json"
    return kind


def _list_item(annotation: Any) -> Any:
    return _unwrap(get_args(annotation)[0])[0] if get_origin(annotation) is list else None


def _simple_model(item: Any) -> bool:
    """A model whose fields each fit one control: its list is edited as a table of rows."""
    return (
        isinstance(item, type)
        and issubclass(item, BaseModel)
        and all(
            _kind(_unwrap(f.annotation)[0]) not in ("json", "lines", "pairs")
            for f in item.model_fields.values()
        )
    )


def _max_length(info: FieldInfo) -> int:
    limits = [getattr(m, "max_length", None) for m in info.metadata]
    return min([MAX_ROWS, *[n for n in limits if isinstance(n, int)]])


def _choices(annotation: Any) -> tuple[str, ...]:
    if get_origin(annotation) is Literal:
        return tuple(str(a) for a in get_args(annotation))
    return tuple(str(m.value) for m in annotation)


def _default(info: FieldInfo) -> Any:
    value = info.get_default(call_default_factory=True)
    return None if value is PydanticUndefined or value in ([], {}) else value


def field_for(
    name: str, info: FieldInfo, *, depth: int = 0, overrides: dict[str, str] | None = None
) -> Field:
    """The control for one model field (``overrides`` may force a kind by name, e.g. ``{"url": "password"}``)."""
    annotation, _ = _unwrap(info.annotation)
    required = info.is_required()
    common: dict[str, Any] = {
        "name": name, "label": _label(name), "required": required, "help": info.description or "",
        "default": None if required else _default(info),
    }  # fmt: skip
    leaf = name.rsplit(".", 1)[-1]
    kind = (overrides or {}).get(name) or _kind(annotation)
    if kind == "text" and _is_secret(name):
        kind = "password"
    elif kind == "text" and leaf in LONG_TEXT:
        kind = "textarea"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and depth == 0 and kind == "json":
        children = tuple(
            field_for(f"{name}.{child}", sub, depth=1, overrides=overrides)
            for child, sub in annotation.model_fields.items()
        )
        return Field(kind="group", children=children, **common)
    if kind == "json" and depth == 0 and _simple_model(_list_item(annotation)):
        item: Any = _list_item(annotation)
        children = tuple(field_for(child, sub, depth=1) for child, sub in item.model_fields.items())
        return Field(kind="rows", children=children, max_rows=_max_length(info), **common)
    if kind == "select":
        return Field(kind=kind, choices=_choices(annotation), **common)
    return Field(kind=kind, integer=annotation is int, **common)


def fields_of(
    model: type[BaseModel], *, only: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
    overrides: dict[str, str] | None = None,
) -> tuple[Field, ...]:  # fmt: skip
    """The form of a request model, in the model's order (or ``only``'s)."""
    names = only or tuple(model.model_fields)
    return tuple(
        field_for(name, model.model_fields[name], overrides=overrides)
        for name in names
        if name in model.model_fields and name not in exclude
    )


def flat(fields: tuple[Field, ...]) -> list[Field]:
    """Every control, children of a group included."""
    out: list[Field] = []
    for f in fields:
        out.extend(flat(f.children) if f.kind == "group" else [f])
    return out


# -- values shown ---------------------------------------------------------------------------------------------


def shown(f: Field, value: Any) -> str:
    """A stored value as its control shows it (secrets are never shown)."""
    if value is None or f.secret:
        return ""
    if f.kind == "checkbox":
        return "on" if value else ""
    if f.kind == "lines" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if f.kind == "pairs" and isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in value.items())
    if f.kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    return str(value)


def state_from(fields: tuple[Field, ...], obj: dict[str, Any]) -> FormState:
    """A form filled from an object as the API answers it (an edit form)."""
    state = FormState()
    for f in flat(fields):
        value: Any = obj
        for part in f.name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if f.kind == "rows":
            _show_rows(f, value if isinstance(value, list) else [], state)
        else:
            state.values[f.name] = shown(f, value)
    return state


def _show_rows(f: Field, items: list[Any], state: FormState) -> None:
    for index, item in enumerate(items[: f.max_rows]):
        for child in f.children:
            got = item.get(child.name) if isinstance(item, dict) else None
            state.values[f"{f.name}.{index}.{child.name}"] = shown(child, got)
    state.rows[f.name] = min(f.max_rows, max(BLANK_ROWS, len(items) + 1))


def defaults(fields: tuple[Field, ...]) -> FormState:
    """A new object's form: each field's default."""
    return FormState(
        values={
            f.name: shown(f, f.default) for f in flat(fields) if f.default is not None and f.kind != "rows"
        }
    )


# -- values posted --------------------------------------------------------------------------------------------


def _number(f: Field, raw: str, state: FormState) -> Any:
    try:
        return int(raw) if f.integer else float(raw)
    except ValueError:
        return raw  # the API says what is wrong with it, in its words


def _lines(f: Field, raw: str, state: FormState) -> Any:
    return [line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()]


def _pairs(f: Field, raw: str, state: FormState) -> Any:
    pairs: dict[str, str] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            state.add_error(f.name, f"write one 'name: value' per line ('{line.strip()[:40]}' has no name)")
            return None
        pairs[key.strip()] = value.strip()
    return pairs


def _json(f: Field, raw: str, state: FormState) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        state.add_error(f.name, f"not valid JSON: {exc}")
        return None


PARSERS = {"number": _number, "lines": _lines, "pairs": _pairs, "json": _json}


def _parsed(f: Field, raw: str, state: FormState) -> Any:
    """The JSON value of one non-blank control (None when the form itself cannot read it)."""
    parser = PARSERS.get(f.kind)
    return raw if parser is None else parser(f, raw, state)


def _chosen(group: Field, child_body: dict[str, Any]) -> bool:
    """Whether a group was filled in: an optional group whose controls hold only their defaults (a preset
    choice such as escalation's ``unless``) was left alone, and is left out."""
    defaults = {c.name: c.default for c in group.children}
    given = {name: value for name, value in child_body.items() if value != defaults.get(name)}
    return bool(given) or (group.required and bool(child_body))


def body_from(
    fields: tuple[Field, ...], form: Form, *, partial: bool = False
) -> tuple[dict[str, Any], FormState]:
    """The API body a posted form stands for, and the form as posted (to show again on an error).

    Blank controls are left out (on an edit: "keep what is there"); an unticked checkbox is ``false``. A group
    whose controls are all blank (or hold only their defaults) is left out as a whole."""
    state = FormState()
    body: dict[str, Any] = {}
    for f in fields:
        if f.kind == "group":
            child_body, child_state = body_from(f.children, form, partial=partial)
            state.values.update(child_state.values)
            state.errors.update(child_state.errors)
            if _chosen(f, child_body):
                body[f.name] = {k.split(".", 1)[1]: v for k, v in child_body.items()}
            continue
        if f.kind == "rows":
            items = _rows_from(f, form, state)
            if items:
                body[f.name] = items
            continue
        raw = form.get(f.name)
        state.values[f.name] = "" if f.secret else raw
        if f.kind == "checkbox":
            if raw or not partial or form.get(f"{f.name}.shown"):
                body[f.name] = bool(raw)
            continue
        if not raw.strip():
            continue
        value = _parsed(f, raw.strip() if f.kind not in ("textarea", "json") else raw, state)
        if value is not None:
            body[f.name] = value
    return body, state


def _rows_from(f: Field, form: Form, state: FormState) -> list[dict[str, Any]]:
    """The items of a table of rows, blank rows left out (and remembered, to place the API's errors)."""
    items: list[dict[str, Any]] = []
    state.row_map[f.name] = []
    last = -1
    for index in range(f.max_rows):
        item: dict[str, Any] = {}
        for child in f.children:
            name = f"{f.name}.{index}.{child.name}"
            raw = form.get(name)
            state.values[name] = raw
            if raw.strip():
                item[child.name] = _parsed(child, raw.strip(), state) if child.kind != "checkbox" else True
        if item:
            items.append(item)
            state.row_map[f.name].append(index)
            last = index
    state.rows[f.name] = min(f.max_rows, max(BLANK_ROWS, last + 2))
    return items


def _row_target(f: Field, where: str, state: FormState) -> str:
    """The form's control for the API's ``addresses.1.platform``: item 1 is the second row *sent*."""
    index, _, rest = where[len(f.name) + 1 :].partition(".")
    sent = state.row_map.get(f.name, [])
    if not index.isdigit() or int(index) >= len(sent):
        return f.name
    return f"{f.name}.{sent[int(index)]}.{rest}" if rest else f.name


def place_errors(fields: tuple[Field, ...], errors: list[tuple[str, str]], state: FormState) -> None:
    """Each API error beside the control it names (the longest control name the error's field starts with);
    errors naming no control go to the top of the form, with their field."""
    names = sorted((f.name for f in flat(fields)), key=len, reverse=True)
    groups = [f.name for f in fields if f.kind == "group"]
    for where, message in errors:
        target = next(
            (n for n in [*names, *groups] if where == n or where.startswith(n + ".")),
            None,
        )
        row_field = next((f for f in flat(fields) if f.kind == "rows" and f.name == target), None)
        if row_field is not None and where != target:
            control = _row_target(row_field, where, state)
            state.add_error(
                control, message if control != target else f"{where[len(target) + 1 :]}: {message}"
            )
        elif target is None:
            state.add_error("", message if where in ("body", "") else f"{where}: {message}")
        else:
            state.add_error(target, message if where == target else f"{where[len(target) + 1 :]}: {message}")
