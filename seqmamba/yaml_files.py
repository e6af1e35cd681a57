"""YAML from users (configs, manifests) read with PyYAML's safe loader and a bound on alias expansion.

An alias bomb (`b: [*a, *a, ...]` nested ten deep) is a few hundred bytes that expand to billions of nodes
in whatever walks the result; it is refused while still a graph, before anything walks it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from seqmamba.errors import InputError

MAX_NODES = 100_000  # nodes after aliases are expanded; configs and manifests hold a few hundred


def expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Nodes this node stands for once every alias is copied out; a node holding itself counts as unbounded."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        return MAX_NODES + 1
    open_nodes.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(expanded_size(child, sizes, open_nodes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(expanded_size(k, sizes, open_nodes) + expanded_size(v, sizes, open_nodes) for k, v in node.value)
    open_nodes.discard(key)
    sizes[key] = min(size, MAX_NODES + 1)
    return sizes[key]


def load_yaml(path: str | Path, what: str = "YAML file") -> object:
    """Parse a user's YAML file safely: errors, undecodable bytes and alias bombs are one InputError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(path, f"not UTF-8 text (byte {error.start}); save the {what} as UTF-8") from None
    except OSError as error:
        raise InputError(path, f"cannot read the {what} ({error.strerror})") from None
    return parse_yaml(text, path, what)


def parse_yaml(text: str, source: str | Path, what: str = "YAML value") -> object:
    """Parse YAML text (a file's, or a value given on the command line) safely, aliases bounded."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node, {}, set()) > MAX_NODES:
            raise InputError(source, f"its aliases (*name) expand to more than {MAX_NODES} values; a {what} "
                                     "never needs that many (an alias bomb?): write the values out")
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InputError(source, f"not valid YAML: {where}{getattr(error, 'problem', None) or error}") from None
    except RecursionError:
        raise InputError(source, f"nested too deep to be a {what}; flatten it") from None
    finally:
        loader.dispose()
