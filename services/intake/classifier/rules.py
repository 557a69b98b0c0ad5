"""Operator rules (config/intake_rules.yaml): phrases that force a label or the urgent flag.

Loaded and validated once; every mistake in the file is reported with the
path, the rule's position and id, and the field, so an operator can fix it
without reading code. Matching works on the same normalised text as the model
(full-width → half-width, lower case, traditional → simplified), so a phrase
written in any of those forms matches all of them. Common typos are listed in
the rules themselves (着伙 next to 着火), never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.intake.classifier.features import normalize
from shared.taxonomy import LABELS

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_MATCH_FIELDS = ("any", "whole", "regex")
_KNOWN_RULE_FIELDS = {"id", "any", "also", "whole", "regex", "unless", "label", "urgent", "note"}
_KNOWN_TOP_FIELDS = {"version", "confidence_threshold", "urgent_threshold", "rules"}


class IntakeRulesError(ValueError):
    """The rules file is invalid; the message names the file, the rule and the field."""


def _phrase_pattern(phrase: str) -> str:
    """A normalised phrase as a regex over normalised text.

    A space may appear between Chinese characters (punctuation became one);
    Latin words must stand alone ("fire" does not match "firefox"). Typos are
    not guessed: list the common ones in the rule (着伙, 媒气) so operators see them.
    """
    out: list[str] = []
    prev = ""
    spaced = False
    for ch in phrase:
        if ch == " ":
            spaced = True
            continue
        if prev and (spaced or not prev.isascii() or not ch.isascii()):
            out.append(" ?")
        out.append(re.escape(ch))
        prev, spaced = ch, False
    pattern = "".join(out)
    if phrase[:1].isascii() and phrase[:1].isalnum():
        pattern = r"(?<![a-z0-9])" + pattern
    if phrase[-1:].isascii() and phrase[-1:].isalnum():
        pattern += r"(?![a-z0-9])"
    return pattern


def _compile_any(phrases: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{_phrase_pattern(p)})" for p in sorted(set(phrases), key=len, reverse=True)))


@dataclass(frozen=True)
class Rule:
    id: str
    label: str | None
    urgent: bool | None
    any_: re.Pattern[str] | None
    also: re.Pattern[str] | None
    whole: frozenset[str]
    regex: re.Pattern[str] | None
    unless: re.Pattern[str] | None
    note: str = ""

    def matches(self, norm: str) -> bool:
        """`norm` is text already passed through `normalize`."""
        if self.whole and norm not in self.whole and norm.replace(" ", "") not in self.whole:
            return False
        if self.any_ is not None and self.any_.search(norm) is None:
            return False
        if self.regex is not None and self.regex.search(norm) is None:
            return False
        if self.also is not None and self.also.search(norm) is None:
            return False
        if self.unless is not None and self.unless.search(norm) is not None:
            return False
        return True


@dataclass(frozen=True)
class RuleOutcome:
    """What the rules say about one message (None = the rules are silent)."""

    label: str | None = None
    label_rule: str | None = None
    urgent: bool | None = None
    urgent_rule: str | None = None


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    confidence_threshold: float | None = None
    urgent_threshold: float | None = None

    def apply(self, norm: str) -> RuleOutcome:
        """Label: the first matching rule (file order) that sets `label`.
        Urgency: urgent if any matching rule says `urgent: true`; otherwise not
        urgent if any matching rule says `urgent: false`; otherwise no opinion."""
        label = label_rule = None
        yes_rule = no_rule = None
        for rule in self.rules:
            wants_label = rule.label is not None and label is None
            wants_urgent = (rule.urgent is True and yes_rule is None) or (
                rule.urgent is False and no_rule is None and yes_rule is None)
            if not (wants_label or wants_urgent) or not rule.matches(norm):
                continue
            if wants_label:
                label, label_rule = rule.label, rule.id
            if rule.urgent is True and yes_rule is None:
                yes_rule = rule.id
            elif rule.urgent is False and no_rule is None:
                no_rule = rule.id
        if yes_rule is not None:
            return RuleOutcome(label, label_rule, True, yes_rule)
        if no_rule is not None:
            return RuleOutcome(label, label_rule, False, no_rule)
        return RuleOutcome(label, label_rule)


def _fail(where: str, message: str) -> IntakeRulesError:
    return IntakeRulesError(f"{where}: {message}")


def _phrases(value: Any, where: str, name: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _fail(where, f"field '{name}' must be a non-empty list of phrases")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, (str, int)) or isinstance(item, bool):
            raise _fail(where, f"field '{name}'[{i}] must be a string, got {type(item).__name__}")
        norm = normalize(str(item))
        if not norm:
            raise _fail(where, f"field '{name}'[{i}] ({item!r}) is empty after normalisation "
                               "(punctuation and spaces are ignored when matching)")
        out.append(norm)
    return out


def _threshold(data: dict, name: str, source: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise _fail(source, f"field '{name}' must be a number between 0 and 1 (or null), got {value!r}")
    return float(value)


def parse_rules(data: Any, source: str = "intake rules") -> RuleSet:
    """Validate the parsed YAML document and build the rule set."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _fail(source, "the file must be a mapping with a 'rules' list")
    unknown = set(data) - _KNOWN_TOP_FIELDS
    if unknown:
        raise _fail(source, f"unknown top-level field '{sorted(unknown)[0]}' "
                            f"(allowed: {', '.join(sorted(_KNOWN_TOP_FIELDS))})")
    version = data.get("version", 1)
    if version != 1:
        raise _fail(source, f"field 'version' must be 1, got {version!r}")
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise _fail(source, "field 'rules' must be a list")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules):
        where = f"{source}: rules[{index}]"
        if not isinstance(raw, dict):
            raise _fail(where, "each rule must be a mapping with at least 'id'")
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not _ID.match(rule_id):
            raise _fail(where, f"field 'id' must be a lower-case name like 'gas-smell', got {rule_id!r}")
        where = f"{where} (id '{rule_id}')"
        if rule_id in seen:
            raise _fail(where, f"field 'id': duplicate id '{rule_id}'")
        seen.add(rule_id)
        unknown = set(raw) - _KNOWN_RULE_FIELDS
        if unknown:
            raise _fail(where, f"unknown field '{sorted(unknown)[0]}' (allowed: {', '.join(sorted(_KNOWN_RULE_FIELDS))})")
        if not any(raw.get(name) is not None for name in _MATCH_FIELDS):
            raise _fail(where, "needs one of the fields 'any', 'whole' or 'regex' to say what it matches")
        label = raw.get("label")
        if label is not None and label not in LABELS:
            raise _fail(where, f"field 'label': {label!r} is not a label; use one of {', '.join(LABELS)}")
        urgent = raw.get("urgent")
        if urgent is not None and not isinstance(urgent, bool):
            raise _fail(where, f"field 'urgent' must be true or false, got {urgent!r}")
        if label is None and urgent is None:
            raise _fail(where, "does nothing: set 'label' and/or 'urgent'")
        any_ = _compile_any(_phrases(raw["any"], where, "any")) if raw.get("any") is not None else None
        also = _compile_any(_phrases(raw["also"], where, "also")) if raw.get("also") is not None else None
        whole = frozenset(_phrases(raw["whole"], where, "whole")) if raw.get("whole") is not None else frozenset()
        whole = whole | frozenset(w.replace(" ", "") for w in whole)
        regex = None
        if raw.get("regex") is not None:
            if not isinstance(raw["regex"], str):
                raise _fail(where, "field 'regex' must be a string")
            try:
                regex = re.compile(raw["regex"])
            except re.error as exc:
                raise _fail(where, f"field 'regex' is not a valid regular expression: {exc}") from None
        unless = _compile_any(_phrases(raw["unless"], where, "unless")) if raw.get("unless") is not None else None
        note = raw.get("note") or ""
        if not isinstance(note, str):
            raise _fail(where, "field 'note' must be a string")
        rules.append(Rule(rule_id, label, urgent, any_, also, whole, regex, unless, note))
    return RuleSet(tuple(rules), _threshold(data, "confidence_threshold", source), _threshold(data, "urgent_threshold", source))


def load_rules(path: Path | None) -> RuleSet:
    """Read and validate the rules file; a missing `path` (None) means no rules."""
    if path is None:
        return RuleSet()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IntakeRulesError(f"{path}: the intake rules file does not exist") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise IntakeRulesError(f"{path}: not valid YAML: {exc}") from None
    return parse_rules(data, str(path))
