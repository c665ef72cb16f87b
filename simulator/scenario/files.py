"""Reading scenario and sweep files safely: a size limit, unique keys, no tags that build
Python objects, and no alias bombs, cycles or deep nesting."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import ScenarioError


class UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses duplicate mapping keys."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML's scalar constructors let Python's own errors out (``!!int abc``,
        # ``!!bool maybe``, an int of 5,000 digits): report them as YAML errors, with the line.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value as {_short_tag(node.tag)} "
                f"({type(exc).__name__})", node.start_mark) from None


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.Node, deep: bool = False) -> Any:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(
            None, None, f"{_short_tag(node.tag)} needs a mapping", node.start_mark)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping key is not a plain value", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)

#: Scenario and sweep files are a few kilobytes; PyYAML reads about 0.1 MiB a second.
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 40
#: Values a file may hold once its aliases are expanded (an alias bomb holds billions).
MAX_VALUES = 1_000_000


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely; any problem becomes a ``ScenarioError`` naming the file."""
    source = str(path)
    raw = read_limited(Path(path), source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text (byte {exc.start})", source=source) from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioError(f"{where}invalid YAML: {exc.problem}",
                            source=source) from None
    except yaml.reader.ReaderError as exc:
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise ScenarioError(f"invalid YAML: character {char!r} at position {exc.position} is "
                            "not allowed", source=source) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ScenarioError(f"invalid YAML: {type(exc).__name__}", source=source) from None
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # What PyYAML's constructors let out beyond ``construct_object``.
        raise ScenarioError(f"invalid YAML: a value cannot be read ({type(exc).__name__})",
                            source=source) from None
    if data is None:
        raise ScenarioError("file is empty, expected a mapping of scenario fields", source=source)
    if not isinstance(data, dict):
        raise ScenarioError(
            f"expected a mapping of fields at the top level, got {_kind(data)}", source=source
        )
    check_tree(data, source)
    return data


#: What a path that is not a regular file is, for the message refusing it.
_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))


def _not_a_file(mode: int) -> str | None:
    """Why a file of ``mode`` cannot be read as a scenario, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, expected a YAML file"
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"is {kind}, not a regular file: expected a YAML file"


def read_limited(path: Path, source: str) -> bytes:
    """The bytes of the regular file ``path``, refused above ``MAX_FILE_BYTES``.

    A device (``/dev/zero``, ``/dev/urandom``), a named pipe or a socket is refused
    before it is read: reading one never ends or never starts. The file is opened
    without blocking (a named pipe swapped in after the check does not hang the open),
    checked again through the open descriptor, and read no further than the limit.
    """
    try:
        why = _not_a_file(path.stat().st_mode)
    except FileNotFoundError:
        raise ScenarioError("file not found", source=source) from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ScenarioError(f"cannot read ({reason})", source=source) from None
    if why is not None:
        raise ScenarioError(why, source=source)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ScenarioError(f"cannot read ({exc.strerror})", source=source) from None
    try:
        why = _not_a_file(os.fstat(fd).st_mode)
        if why is not None:
            raise ScenarioError(why, source=source)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ScenarioError(f"cannot read ({exc.strerror})", source=source) from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise ScenarioError(f"file is larger than {MAX_FILE_BYTES // 2**20} MiB", source=source)
    return b"".join(chunks)


def check_tree(data: dict[str, Any], source: str) -> None:
    """Refuse text that cannot be written out, alias bombs, cycles and deep nesting."""
    bad_text = _unencodable_text(data)
    if bad_text is not None:
        raise ScenarioError(f"text {bad_text!r} is not valid Unicode (an escaped surrogate)",
                            source=source)
    try:
        values, depth = _expanded_size(data)
    except RecursionError:  # a list or mapping that contains itself
        raise ScenarioError("invalid YAML: an alias refers to the list or mapping that "
                            "contains it", source=source) from None
    if values > MAX_VALUES:
        raise ScenarioError(f"holds more than {MAX_VALUES:,} values once its aliases are "
                            "expanded", source=source)
    if depth > MAX_DEPTH:
        raise ScenarioError(f"nested deeper than {MAX_DEPTH} levels", source=source)


def _expanded_size(root: Any) -> tuple[int, int]:
    """Values and nesting depth of ``root`` as if every YAML alias were expanded.

    An alias is a shared reference, so an alias bomb ("billion laughs") is a small graph
    that expands to billions of values: sizes are summed over the graph, each list or
    mapping visited once, without expanding it. Raises ``RecursionError`` on a cycle.
    """
    done: dict[int, tuple[int, int]] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        children = list(node.values()) if isinstance(node, dict) else node
        if finished:
            size, depth = 1, 1
            for child in children:
                s, d = done.get(id(child), (1, 0)) if isinstance(child, dict | list) else (1, 0)
                size, depth = size + s, max(depth, d + 1)
            done[key] = (min(size, 2 * MAX_VALUES), depth)
            on_path.discard(key)
        elif key in on_path:  # pushed by one of its own descendants
            raise RecursionError
        elif key not in done:
            on_path.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in children
                         if isinstance(c, dict | list) and id(c) not in done)
    if isinstance(root, dict | list):
        return done[id(root)]
    return 1, 0


def _unencodable_text(data: dict[str, Any]) -> str | None:
    """The first key or text value that cannot be written as UTF-8 (e.g. ``"\\ud800"``)."""
    stack: list[Any] = [data]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return node[:40]
        elif isinstance(node, dict | list) and id(node) not in seen:
            seen.add(id(node))
            stack.extend(node)
            if isinstance(node, dict):
                stack.extend(node.values())
    return None


def _kind(value: Any) -> str:
    names = {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}
    return names.get(type(value), type(value).__name__)
