"""YAML text -> (plain data, node tree), so errors can name the line of any key.

Only the safe loader is used. Every failure of the YAML layer (syntax, several documents, bad
characters, impossible dates, duplicate keys) comes back as a `YamlProblem` carrying a line,
and the caller turns it into its own one-line error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MERGE_KEY_TAG = "tag:yaml.org,2002:merge"


class YamlProblem(Exception):
    """A YAML-level failure at a 1-based line; `path` is the key path when one is known."""

    def __init__(self, line: int, path: tuple[str | int, ...], problem: str, fix: str) -> None:
        super().__init__(f"line {line}: {problem} ({fix})")
        self.line, self.path, self.problem, self.fix = line, path, problem, fix


@dataclass(frozen=True)
class YamlDocument:
    data: Any  # what yaml.safe_load would return
    root: Node | None  # None for an empty document


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document with the safe loader, keeping the node tree for line numbers."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # the reader refuses control characters right here
        root = loader.get_single_node()
        if root is None:
            return YamlDocument(None, None)
        _reject_duplicate_keys(root)
        try:
            data = loader.construct_document(root)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as error:
            # e.g. `2001-02-30` is matched as a date and then refused by datetime.
            raise YamlProblem(_first_unconstructible_line(root), (), _one_line(str(error)),
                              "quote the value to keep it as text") from None
        return YamlDocument(data, root)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise YamlProblem(mark.line + 1 if mark else 1, (), _one_line(problem or str(error)),
                          _syntax_fix(problem)) from None
    except yaml.reader.ReaderError as error:
        line = text[: max(error.position, 0)].count("\n") + 1
        raise YamlProblem(line, (), f"character {error.character!r} is not allowed in YAML",
                          "remove control characters from the file") from None
    except yaml.YAMLError as error:
        raise YamlProblem(1, (), _one_line(str(error)), "check the YAML syntax") from None
    except RecursionError:
        raise YamlProblem(1, (), "the YAML is nested too deeply",
                          "flatten the structure; recipes are at most 3 levels deep") from None
    finally:
        if loader is not None:
            loader.dispose()


def line_of(root: Node | None, path: Sequence[str | int]) -> int:
    """Line (1-based) of the deepest key of `path` present in the document."""
    if root is None:
        return 1
    node, line = root, root.start_mark.line + 1
    for part in path:
        child = _child(node, part)
        if child is None:
            break
        key_node, node = child
        line = key_node.start_mark.line + 1
    return line


def _child(node: Node, part: str | int) -> tuple[Node, Node] | None:
    if isinstance(node, MappingNode):
        found = None
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == str(part):
                found = (key, value)  # the last duplicate wins, as in the loader
        return found
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item, item
    return None


def _walk_mappings(root: Node) -> Iterator[tuple[tuple[str | int, ...], MappingNode]]:
    """Every mapping node once (aliases are shared nodes, so a visited set keeps this linear)."""
    stack: list[tuple[tuple[str | int, ...], Node]] = [((), root)]
    seen: set[int] = set()
    while stack:
        path, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            yield path, node
            for key, value in reversed(node.value):
                label = key.value if isinstance(key, ScalarNode) else "?"
                stack.append(((*path, label), value))
        elif isinstance(node, SequenceNode):
            for index in reversed(range(len(node.value))):
                stack.append(((*path, index), node.value[index]))


def _reject_duplicate_keys(root: Node) -> None:
    for path, node in _walk_mappings(root):
        first_line: dict[str, int] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.tag == MERGE_KEY_TAG:
                continue
            line = key.start_mark.line + 1
            if key.value in first_line:
                raise YamlProblem(line, (*path, key.value),
                                  f"duplicate key (also on line {first_line[key.value]})",
                                  "keep only one of them")
            first_line[key.value] = line


def _first_unconstructible_line(root: Node) -> int:
    constructor = yaml.constructor.SafeConstructor()
    for _, mapping in _walk_mappings(root):
        for key, value in mapping.value:
            for node in (key, value):
                if isinstance(node, ScalarNode):
                    try:
                        constructor.construct_object(node, deep=True)
                    except Exception:  # noqa: BLE001 - we only want to know where it fails
                        return node.start_mark.line + 1
    return root.start_mark.line + 1


def _syntax_fix(problem: str) -> str:
    if "\\t" in problem or "tab" in problem:
        return "indent with spaces, not tabs"
    if "single document" in problem:
        return "keep one recipe per file: remove the extra `---`"
    return "check the indentation, colons and quotes on this line and the one before"


def _one_line(text: str) -> str:
    return " ".join(text.split())
