"""The small, safe expression language of ``when`` conditions and column values.

A pipeline file is configuration, not code, so nothing here reaches ``eval``: a tokenizer, a
recursive-descent parser that builds a tiny tree, and an evaluator over plain dicts. What it
knows:

    literals     'text' "text" 12 0.5 true false null [a, b, c]
    paths        steps.extract.data.total  steps.classify.confidence  input.filename  run.id
    comparisons  == != < <= > >=   (a number against a string like "$1,234.50" compares the
                 string's number; anything else incomparable is false, never an error)
    membership   x in [..]  'word' in steps.ingest.text  x not in ...
    logic        and or not ( )   (true or false, whatever the operands are)
    first(a, b, ...)   the first operand that is not null, else null: "this or else that",
                 e.g. the vendor of whichever extract step ran (a confidence of 0 or an
                 empty string is a value, so it is kept; ``or`` would pass over it)

A path that names a missing key (a skipped step, a field the text did not state) is ``null``.
Paths are checked when the pipeline is loaded: ``steps.NAME`` must name an earlier step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from litegate.errors import ConfigError

ROOTS = ("steps", "input", "run")
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
  | (?P<name>[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)
""", re.VERBOSE)
KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "none"}
FUNCTIONS = ("first",)
MAX_LENGTH = 2000


class ExprError(ConfigError):
    """An expression that does not parse, or names what it cannot reach."""


@dataclass(frozen=True)
class Node:
    op: str  # lit, path, list, not, and, or, cmp, first
    args: tuple[Any, ...]


def tokenize(source: str) -> list[tuple[str, str]]:
    if len(source) > MAX_LENGTH:
        raise ExprError(f"is {len(source)} characters long; at most {MAX_LENGTH}")
    tokens, pos = [], 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise ExprError(f"cannot read {source[pos:pos + 12]!r} at character {pos + 1}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "ws":
            continue
        text = m.group()
        if kind == "name" and text.lower() in KEYWORDS:
            kind = "kw"
            text = text.lower()
        tokens.append((kind, text))
    return tokens


class _Parser:
    """expr := or ; or := and ('or' and)* ; and := not ('and' not)* ; not := 'not' not | cmp ;
    cmp := atom (OP atom | 'in' atom | 'not' 'in' atom)? ;
    atom := literal | path | list | 'first' '(' expr (',' expr)* ')' | '(' expr ')'"""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ExprError("ends too early")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        if self.peek() is None:
            raise ExprError(f"ends where {text!r} is expected")
        tok = self.take()
        if tok[1] != text:
            raise ExprError(f"expected {text!r}, found {tok[1]!r}")

    def parse(self) -> Node:
        if not self.tokens:
            raise ExprError("is empty")
        node = self.or_()
        if self.peek() is not None:
            raise ExprError(f"has {self.peek()[1]!r} where it should end")  # type: ignore[index]
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.peek() == ("kw", "or"):
            self.take()
            node = Node("or", (node, self.and_()))
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.peek() == ("kw", "and"):
            self.take()
            node = Node("and", (node, self.not_()))
        return node

    def not_(self) -> Node:
        if self.peek() == ("kw", "not"):
            self.take()
            return Node("not", (self.not_(),))
        return self.cmp()

    def cmp(self) -> Node:
        left = self.atom()
        tok = self.peek()
        if tok is None:
            return left
        if tok[0] == "op" and tok[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return Node("cmp", (tok[1], left, self.atom()))
        if tok == ("kw", "in"):
            self.take()
            return Node("cmp", ("in", left, self.atom()))
        if tok == ("kw", "not") and self.peek(1) == ("kw", "in"):
            self.i += 2
            return Node("cmp", ("not in", left, self.atom()))
        return left

    def atom(self) -> Node:
        kind, text = self.take()
        if kind == "num":
            return Node("lit", (float(text) if "." in text else int(text),))
        if kind == "str":
            return Node("lit", (re.sub(r"\\(.)", r"\1", text[1:-1]),))
        if kind == "kw" and text in ("true", "false"):
            return Node("lit", (text == "true",))
        if kind == "kw" and text in ("null", "none"):
            return Node("lit", (None,))
        if kind == "name" and self.peek() == ("op", "("):
            if text not in FUNCTIONS:
                raise ExprError(f"calls {text}(...); the only function is {', '.join(FUNCTIONS)}(...)")
            return self.call(text)
        if kind == "name":
            parts = text.split(".")
            if parts[0] not in ROOTS:
                raise ExprError(f"names {text!r}; paths start with {', '.join(ROOTS)} (strings need quotes)")
            return Node("path", tuple(parts))
        if text == "(":
            node = self.or_()
            self.expect(")")
            return node
        if text == "[":
            items: list[Node] = []
            while self.peek() is not None and self.peek()[1] != "]":  # type: ignore[index]
                items.append(self.atom())
                if self.peek() is not None and self.peek()[1] == ",":  # type: ignore[index]
                    self.take()
            self.expect("]")
            return Node("list", tuple(items))
        raise ExprError(f"has {text!r} where a value should be")

    def call(self, name: str) -> Node:
        self.expect("(")
        if self.peek() == ("op", ")"):
            raise ExprError(f"calls {name}() with nothing in it; give it one value or more")
        args = [self.or_()]
        while self.peek() == ("op", ","):
            self.take()
            args.append(self.or_())
        self.expect(")")
        return Node(name, tuple(args))


MAX_DEPTH = 64  # brackets within one another: far past any condition a person writes


def parse(source: str) -> Node:
    """The tree of ``source``; ExprError (a ConfigError) says what does not parse."""
    if not isinstance(source, str):
        raise ExprError("must be a string")
    tokens = tokenize(source)
    depth = deepest = 0
    for token in tokens:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(token[1], 0) if token[0] != "str" else 0
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise ExprError(f"is nested {deepest} brackets deep; at most {MAX_DEPTH}")
    try:
        return _Parser(tokens).parse()
    except RecursionError:  # a shape the count above does not see (a long chain of 'not')
        raise ExprError(f"is nested too deeply to read; keep it under {MAX_DEPTH} levels") from None


def paths(node: Node) -> list[tuple[str, ...]]:
    """Every path an expression reads (for checking references at load time)."""
    if node.op == "path":
        return [node.args]
    found: list[tuple[str, ...]] = []
    for a in node.args:
        if isinstance(a, Node):
            found += paths(a)
    return found


def lookup(scope: dict[str, Any], path: tuple[str, ...] | list[str]) -> Any:
    value: Any = scope
    for part in path:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            idx = int(part)
            value = value[idx] if -len(value) <= idx < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


_NUMBER = re.compile(r"^[^\d\-]{0,4}(-?[\d,]*\.?\d+)\s*[^\d]{0,4}$")


def as_number(value: Any) -> float | None:
    """A number, or a string that is one ("1,234.50", "$99", "12 EUR"); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _NUMBER.match(value.strip())
        if m:
            try:
                return float(m.group(1).replace(",", ""))
            except ValueError:
                return None
    return None


def _compare(op: str, a: Any, b: Any) -> bool:
    if op in ("in", "not in"):
        if isinstance(b, str):
            found = isinstance(a, str) and a in b
        elif isinstance(b, (list, tuple, dict)):
            found = a in b
        else:
            found = False
        return found if op == "in" else not found
    if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, str):
        b = as_number(b)
    elif isinstance(b, (int, float)) and not isinstance(b, bool) and isinstance(a, str):
        a = as_number(a)
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if a is None or b is None:
        return False
    try:
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
    except TypeError:
        return False


def evaluate(node: Node, scope: dict[str, Any]) -> Any:
    op = node.op
    if op == "lit":
        return node.args[0]
    if op == "path":
        return lookup(scope, node.args)
    if op == "list":
        return [evaluate(a, scope) for a in node.args]
    if op == "not":
        return not truthy(evaluate(node.args[0], scope))
    if op == "and":
        return truthy(evaluate(node.args[0], scope)) and truthy(evaluate(node.args[1], scope))
    if op == "or":
        return truthy(evaluate(node.args[0], scope)) or truthy(evaluate(node.args[1], scope))
    if op == "first":
        for arg in node.args:
            value = evaluate(arg, scope)
            if value is not None:
                return value
        return None
    if op == "cmp":
        cmp, left, right = node.args
        return _compare(cmp, evaluate(left, scope), evaluate(right, scope))
    raise AssertionError(op)


def truthy(value: Any) -> bool:
    return bool(value)


class Expression:
    """A parsed expression with its source (for messages and the runs table)."""

    def __init__(self, source: str):
        self.source = source
        self.tree = parse(source)

    def __call__(self, scope: dict[str, Any]) -> Any:
        return evaluate(self.tree, scope)

    def paths(self) -> list[tuple[str, ...]]:
        return paths(self.tree)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


_TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def template_paths(text: str) -> list[Expression]:
    """The ``{{ expression }}`` holes of a template string, parsed."""
    return [Expression(m.group(1)) for m in _TEMPLATE.finditer(text)]


def render(text: str, scope: dict[str, Any]) -> Any:
    """A template string with its ``{{ ... }}`` holes filled. A string that is one hole and
    nothing else keeps the value's type (a number stays a number, null stays null)."""
    whole = _TEMPLATE.fullmatch(text.strip())
    if whole:
        return Expression(whole.group(1))(scope)

    def fill(m: re.Match[str]) -> str:
        value = Expression(m.group(1))(scope)
        return "" if value is None else str(value)

    return _TEMPLATE.sub(fill, text)
