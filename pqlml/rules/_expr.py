"""Hand-set rules as teams write them, parsed safely and evaluated on a feature table.

A rule is a boolean expression over feature names (and names of rules defined
before it): comparisons (``>= > <= < == !=``, chained), ``and`` / ``or`` /
``not``, parentheses, ``+ - * /`` and numbers, which may be written with
thousands separators as sales decks do (``1,000``). The text is parsed with
:mod:`ast` and only these node kinds are accepted; nothing is ever ``eval``-ed.
A missing value (NaN) fails every comparison.

Examples
--------
>>> import pandas as pd
>>> X = pd.DataFrame({"events_invite_sent_30d": [3, 5, 0],
...                   "events_message_sent_30d": [1200, 999, 5000]})
>>> r = Rule.parse("invited", "events_invite_sent_30d >= 3 and events_message_sent_30d >= 1,000")
>>> r.evaluate(X).tolist()
[True, False, False]
>>> sorted(r.features)
['events_invite_sent_30d', 'events_message_sent_30d']
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["Rule", "parse_rules", "evaluate_rules"]

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_COMPARE = {ast.GtE: operator.ge, ast.Gt: operator.gt, ast.LtE: operator.le, ast.Lt: operator.lt,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
          ast.Div: operator.truediv}


@dataclass(frozen=True)
class Rule:
    """A named boolean expression; ``features`` are the names it reads."""

    name: str
    text: str
    tree: ast.Expression
    features: frozenset[str]

    @classmethod
    def parse(cls, name: str, text: str) -> "Rule":
        """Parse ``text``; a malformed expression is a :class:`ConfigError` pointing at it."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"Rule '{name}' is empty. Fix: write a condition over feature "
                              f"names, e.g. {name} = \"active_users_30d >= 7\".")
        source = _THOUSANDS.sub("", text.strip())
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as err:
            raise ConfigError(_pointed(name, source, (err.offset or 1) - 1,
                                       "is not a valid expression")) from None
        names = set()
        for node in ast.walk(tree):
            _check_node(name, source, node)
            if isinstance(node, ast.Name):
                names.add(node.id)
        return cls(name, text, tree, frozenset(names))

    def evaluate(self, frame: pd.DataFrame, known: dict | None = None) -> pd.Series:
        """The rule's flag per row of ``frame``; ``known`` holds earlier rules' flags."""
        env = dict(known or {})
        missing = sorted(n for n in self.features if n not in frame.columns and n not in env)
        if missing:
            raise ConfigError(_unknown(self, missing, list(frame.columns) + list(env)))
        value = _eval(self.tree.body, frame, env)
        if not isinstance(value, pd.Series) or value.dtype != bool:
            raise ConfigError(f"Rule '{self.name}' ({self.text!r}) is not a condition: it gives "
                              f"a number. Fix: compare it, e.g. '{self.text} >= 1'.")
        return value.rename(self.name)


def parse_rules(rules) -> dict[str, Rule]:
    """Parse a ``{name: text}`` mapping (the config's ``[rules]``) in order."""
    return {name: Rule.parse(name, text) for name, text in rules.items()}


def evaluate_rules(rules: dict[str, Rule], frame: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per rule; a rule may use the rules defined before it (levels)."""
    flags: dict[str, pd.Series] = {}
    for name, rule in rules.items():
        flags[name] = rule.evaluate(frame, flags)
    return pd.DataFrame(flags, index=frame.index)


def _pointed(name: str, source: str, pos: int, what: str) -> str:
    pos = max(0, min(pos, len(source)))
    return (f"Rule '{name}' {what} at position {pos + 1}:\n    {source}\n    {' ' * pos}^\n"
            f"Fix: write comparisons joined by and / or / not, e.g. "
            f"\"active_users_30d >= 7 and events_task_created_30d >= 50\".")


def _check_node(name: str, source: str, node: ast.AST) -> None:
    allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
               ast.Compare, ast.BinOp, ast.Name, ast.Load, ast.Constant, *_COMPARE, *_ARITH)
    if not isinstance(node, allowed):
        pos = getattr(node, "col_offset", 0)
        raise ConfigError(_pointed(name, source, pos, f"uses {type(node).__name__}, which "
                                   "rules do not allow"))
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                           or not isinstance(node.value, (int, float))):
        raise ConfigError(_pointed(name, source, node.col_offset,
                                   f"has the value {node.value!r}; rules compare numbers"))


def _unknown(rule: Rule, missing: list[str], known: list[str]) -> str:
    hints = []
    for n in missing:
        close = difflib.get_close_matches(n, known, n=3, cutoff=0.5)
        hints.append(f"'{n}'" + (f" (closest: {', '.join(close)})" if close else ""))
    return (f"Rule '{rule.name}' ({rule.text!r}) names unknown features: {'; '.join(hints)}. "
            f"Fix: use a feature name from `pqlml features` output, or a rule defined above it.")


def _eval(node: ast.AST, frame: pd.DataFrame, env: dict):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id] if node.id in env else frame[node.id]
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, frame, env)
        return ~_as_bool(value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BoolOp):
        values = [_as_bool(_eval(v, frame, env)) for v in node.values]
        out = values[0]
        for v in values[1:]:
            out = (out & v) if isinstance(node.op, ast.And) else (out | v)
        return out
    if isinstance(node, ast.BinOp):
        return _ARITH[type(node.op)](_eval(node.left, frame, env), _eval(node.right, frame, env))
    # ast.Compare, possibly chained: a < b <= c is (a < b) and (b <= c)
    out, left = None, _eval(node.left, frame, env)
    for op, right_node in zip(node.ops, node.comparators):
        right = _eval(right_node, frame, env)
        part = _series(_COMPARE[type(op)](left, right), frame).fillna(False).astype(bool)
        out = part if out is None else out & part
        left = right
    return out


def _series(value, frame: pd.DataFrame) -> pd.Series:
    if isinstance(value, pd.Series):
        return value.astype("boolean") if value.dtype != bool else value
    return pd.Series(np.full(len(frame), bool(value)), index=frame.index)


def _as_bool(value) -> pd.Series:
    if isinstance(value, pd.Series) and value.dtype == bool:
        return value
    raise ConfigError("and / or / not join conditions, not numbers. Fix: compare each side, "
                      "e.g. 'a >= 1 and b >= 1'.")
