"""Knowledge-base files: FAQ entries in YAML, or labelled example questions in CSV.

Parsing is all-or-nothing: a malformed file raises `KbError` naming the line, and
nothing is returned, so an import never half-applies. Text is taken as written: a YAML
value that YAML would read as something else (`yes`, `9:30`, an empty value) is refused
with a hint to quote it, rather than stored as "True", "570" or "None".
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_TEXT = 4000
# libyaml's parser reads the sample FAQ in 3 ms against the pure-Python parser's 80 ms (start-up)
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_FIELDS = ("id", "question", "alternates", "answer", "tags", "links")
_LISTS = ("alternates", "tags", "links")
_CORE = "tag:yaml.org,2002:"
_STR, _INT, _NULL, _MERGE = (_CORE + name for name in ("str", "int", "null", "merge"))
_DIGITS = re.compile(r"[0-9]+")
_KINDS = {
    "bool": "a yes/no",
    "int": "a number",
    "float": "a number",
    "timestamp": "a date",
    "null": "nothing",
}
# YAML reads these as line breaks: unescaped, one comes back from a plain or quoted scalar as a space.
_BREAKS = ("\x85", "\u2028", "\u2029")


class KbError(Exception):
    """A knowledge-base file or entry is malformed."""


@dataclass(frozen=True)
class Entry:
    """One FAQ entry: a canonical question, its paraphrases and the answer."""

    id: str
    question: str
    answer: str
    alternates: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    links: tuple[str, ...] = field(default_factory=tuple)

    @property
    def examples(self) -> tuple[str, ...]:
        """Every question that should retrieve this entry."""
        return (self.question, *self.alternates)

    def to_dict(self) -> dict[str, Any]:
        """The entry as it is written in a YAML knowledge base."""
        out: dict[str, Any] = {"id": self.id, "question": self.question}
        out["alternates"] = list(self.alternates)
        out["answer"] = self.answer
        if self.tags:
            out["tags"] = list(self.tags)
        if self.links:
            out["links"] = list(self.links)
        return out


NO_ANSWER = "(no answer written yet for {label!r})"  # a CSV label without an answers file row


def unwritten(label: str) -> str:
    """The stand-in answer of an entry imported without one."""
    return NO_ANSWER.format(label=label)


def has_answer(entry: Entry) -> bool:
    """Whether someone wrote the entry's answer (else Baton must not send its stand-in)."""
    return entry.answer != unwritten(entry.id)


def read_text(path: Path) -> str:
    """A UTF-8 text file (a byte-order mark is dropped), naming the line of a byte that is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KbError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise KbError(
            f"{path}, line {line}: cannot read the file: byte 0x{data[exc.start]:02x} is not UTF-8 "
            "(save the file as UTF-8)"
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as Python's text mode reads it


def load_file(path: Path, answers: Path | None = None) -> list[Entry]:
    """Entries from a `.yaml`/`.yml` FAQ or a `.csv` of labelled questions (answers: CSV only)."""
    is_csv = path.suffix.lower() == ".csv"
    if answers is not None and not is_csv:
        raise KbError(
            f"{answers}: an answers file goes with a CSV of labelled questions; "
            f"{path} is a YAML FAQ, whose entries carry their own answers"
        )
    text = read_text(path)
    if not is_csv:
        return parse_yaml(text, source=str(path))
    rows = _answer_rows(answers) if answers else []
    entries = parse_csv(text, {label: answer for _, label, answer in rows}, source=str(path))
    _check_answer_labels(rows, entries, str(answers), str(path))
    return entries


def parse_yaml(text: str, source: str = "<yaml>") -> list[Entry]:
    """Entries from YAML: a list, or a mapping with an `entries` list."""
    try:
        nodes = _compose(text)
    except yaml.YAMLError as exc:
        raise KbError(f"{source}: not valid YAML: {exc}") from exc
    items = _entry_nodes(nodes, source)
    entries = [_entry_from_node(node, source) for node in items]
    _check_unique(entries, [_line(node) for node in items], source)
    return entries


def _compose(text: str) -> yaml.Node | None:
    """The YAML node tree, parsed by libyaml when it can; errors come from the pure-Python parser."""
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        return yaml.compose(text)  # its messages are the ones users have seen (same line, column)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _entry_nodes(root: yaml.Node | None, source: str) -> list[yaml.Node]:
    """The YAML nodes of the entries, whichever of the two layouts the file uses."""
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "entries" and isinstance(value, yaml.SequenceNode):
                return list(value.value)
    if isinstance(root, yaml.SequenceNode):
        return list(root.value)
    raise KbError(f"{source}: expected a list of entries or a mapping with an 'entries' list")


def _entry_from_node(node: yaml.Node, source: str) -> Entry:
    """Validate one YAML entry, naming its line (or its field's) on error."""
    where = f"{source}, line {_line(node)}"
    if not isinstance(node, yaml.MappingNode):
        raise KbError(f"{where}: an entry must be a mapping with id, question and answer")
    fields = _fields(node, source)
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise KbError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    return make_entry({name: _field(value, name, source) for name, value in fields.items()}, where)


def _fields(node: yaml.MappingNode, source: str) -> dict[str, yaml.Node]:
    """An entry's value nodes by field name, refusing a field given twice (YAML keeps the last)."""
    first: dict[str, int] = {}
    for key, _ in node.value:
        if key.tag == _MERGE:
            continue
        name = _key(key)
        if name in first:
            raise KbError(
                f"{source}, line {_line(key)}: '{name}' is given twice in one entry "
                f"(first on line {first[name]})"
            )
        first[name] = _line(key)
    if len(first) < len(node.value):  # `<<: *anchor` merges: the entry's own fields win
        try:
            yaml.SafeLoader("").flatten_mapping(node)
        except yaml.YAMLError as exc:
            raise KbError(f"{source}, line {_line(node)}: {exc}") from exc
    return {_key(key): value for key, value in node.value}


def _key(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else "(a list or mapping)"


def _field(node: yaml.Node, name: str, source: str) -> str | list[str | None] | None:
    """One field's text, or list of texts, as written in the file."""
    where = f"{source}, line {_line(node)}"
    if name not in _LISTS:
        return _scalar(node, name, where, numbers=name == "id")
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL and not node.value:
        return None
    if not isinstance(node, yaml.SequenceNode):
        raise KbError(f"{where}: '{name}' must be a list")
    return [
        _scalar(item, name, f"{source}, line {_line(item)}", numbers=name == "tags") for item in node.value
    ]


def _scalar(node: yaml.Node, name: str, where: str, numbers: bool = False) -> str | None:
    """A scalar's text as written; refuses one YAML reads as a yes/no, a number, a date or null.

    With `numbers`, a plain run of digits (an id like 42) is taken as the text it is written as.
    """
    if not isinstance(node, yaml.ScalarNode):
        raise KbError(f"{where}: '{name}' must be text")
    if node.tag == _STR or (numbers and node.tag == _INT and _DIGITS.fullmatch(node.value)):
        return str(node.value)
    if node.tag == _NULL and not node.value:
        return None  # `answer:` with nothing after it: reported as missing
    kind = _KINDS.get(node.tag.removeprefix(_CORE))
    if kind is None:
        raise KbError(f"{where}: '{name}' must be text, not a value tagged {node.tag}")
    raise KbError(
        f"{where}: '{name}' must be text, but YAML reads {node.value} as {kind}; "
        f'write it in quotes, "{node.value}", to keep it as text'
    )


def make_entry(data: dict[str, Any], where: str = "entry") -> Entry:
    """Build an `Entry` from plain values, checking every field."""
    entry_id = _text(data.get("id"), "id", where)
    _check_id(entry_id, "id", where)
    return Entry(
        id=entry_id,
        question=_text(data.get("question"), "question", where),
        answer=_text(data.get("answer"), "answer", where),
        alternates=_texts(data.get("alternates"), "alternates", where),
        tags=_texts(data.get("tags"), "tags", where),
        links=_texts(data.get("links"), "links", where),
    )


def _check_id(value: str, name: str, where: str) -> None:
    if not _ID.match(value):
        raise KbError(f"{where}: {name} {value!r} must be letters, digits, '-', '_', '.' or ':'")


def _text(value: Any, name: str, where: str) -> str:
    """A required, non-empty, bounded string field (never a number or a yes/no turned into text)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise KbError(f"{where}: '{name}' is missing or empty")
    if not isinstance(value, str):
        raise KbError(f"{where}: '{name}' must be text")
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise KbError(f"{where}: '{name}' is longer than {MAX_TEXT} characters")
    return text


def _texts(value: Any, name: str, where: str) -> tuple[str, ...]:
    """An optional list of strings."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise KbError(f"{where}: '{name}' must be a list")
    return tuple(_text(item, name, where) for item in value)


def _check_unique(entries: list[Entry], lines: list[int], source: str) -> None:
    """Refuse a file that defines the same id twice, naming both lines."""
    seen: dict[str, int] = {}
    for entry, line in zip(entries, lines, strict=True):
        if entry.id in seen:
            raise KbError(
                f"{source}, line {line}: the id {entry.id!r} is used twice (first on line {seen[entry.id]})"
            )
        seen[entry.id] = line


def read_rows(
    text: str, source: str = "<csv>", columns: tuple[str, str] = ("text", "label")
) -> list[tuple[int, str, str]]:
    """(line, cell, cell) of each row of a CSV whose header names both columns, cells as written.

    Refuses, naming the line: a header without the columns, a row with either cell empty, a
    quote that is never closed (it would swallow the rest of the file) and a file with no rows.
    """
    rows = _csv_lines(text, source)
    _, header = next(rows, (1, []))
    names = [cell.strip().lower() for cell in header]
    if not set(columns) <= set(names):
        found = f" (it is {','.join(header)!r})" if header else " (the file is empty)"
        raise KbError(f"{source}, line 1: the header must be '{','.join(columns)}'{found}")
    first, second = (names.index(column) for column in columns)
    out = []
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        cells = [row[i] if i < len(row) else "" for i in (first, second)]
        if not all(cell.strip() for cell in cells):
            raise KbError(f"{source}, line {line}: expected {_a(columns[0])} and {_a(columns[1])}")
        out.append((line, cells[0], cells[1]))
    if not out:
        raise KbError(f"{source}: no rows after the header")
    return out


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _csv_lines(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV row with the line it starts on; an error names that line."""
    reader = csv.reader(io.StringIO(text), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):  # strict mode's word for a quote left open
                raise KbError(f"{source}, line {start}: a quote opened on this line is never closed") from exc
            raise KbError(f"{source}, line {reader.line_num}: not valid CSV ({exc})") from exc
        yield start, row


def read_labelled(text: str, source: str = "<csv>") -> list[tuple[str, str]]:
    """Rows of a `text,label` CSV, naming the line of any malformed row."""
    return [(question.strip(), label.strip()) for _, question, label in read_rows(text, source)]


def parse_csv(text: str, answers: dict[str, str], source: str = "<csv>") -> list[Entry]:
    """Entries from labelled questions: one entry per label, its first question canonical."""
    grouped: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for line, question, label in read_rows(text, source):
        where, label = f"{source}, line {line}", label.strip()
        _check_id(label, "label", where)
        grouped.setdefault(label, []).append(_text(question, "text", where))
        first_line.setdefault(label, line)
    entries = []
    for label, questions in grouped.items():
        answer = answers.get(label, unwritten(label))
        data = {"id": label, "question": questions[0], "alternates": questions[1:], "answer": answer}
        entries.append(make_entry(data, f"{source}, line {first_line[label]} (label {label!r})"))
    return entries


def load_answers(path: Path) -> dict[str, str]:
    """Answers by label from a CSV `label,answer` or a YAML mapping label → answer."""
    return {label: answer for _, label, answer in _answer_rows(path)}


def _answer_rows(path: Path) -> list[tuple[int, str, str]]:
    """(line, label, answer) from an answers file, each checked; a label given twice is refused."""
    source, text = str(path), read_text(path)
    rows = _csv_answers(text, source) if path.suffix.lower() == ".csv" else _yaml_answers(text, source)
    seen: dict[str, int] = {}
    for line, label, _ in rows:
        if label in seen:
            raise KbError(
                f"{source}, line {line}: the label {label!r} has two answers (first on line {seen[label]})"
            )
        seen[label] = line
    return rows


def _csv_answers(text: str, source: str) -> list[tuple[int, str, str]]:
    rows = read_rows(text, source, ("label", "answer"))
    return [(n, label.strip(), _text(answer, "answer", f"{source}, line {n}")) for n, label, answer in rows]


def _yaml_answers(text: str, source: str) -> list[tuple[int, str, str]]:
    try:
        root = _compose(text)
    except yaml.YAMLError as exc:
        raise KbError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(root, yaml.MappingNode) or not root.value:
        raise KbError(f"{source}: answers must map each label to its answer (label: answer)")
    rows = []
    for key, value in root.value:
        where = f"{source}, line {_line(key)}"
        label = _text(_scalar(key, "label", where, numbers=True), "label", where)
        rows.append((_line(key), label, _text(_scalar(value, "answer", where), "answer", where)))
    return rows


def _check_answer_labels(
    rows: list[tuple[int, str, str]], entries: list[Entry], source: str, csv_path: str
) -> None:
    """Refuse an answer whose label no question has (a typo would leave its entry unanswered)."""
    labels = [entry.id for entry in entries]
    for line, label, _ in rows:
        if label not in labels:
            close = difflib.get_close_matches(label, labels, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KbError(f"{source}, line {line}: no question in {csv_path} has the label {label!r}{hint}")


class _Dumper(yaml.SafeDumper):
    """Writes text holding one of YAML's line-break characters double-quoted, where it is escaped."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(char in value for char in _BREAKS) else None
    return dumper.represent_scalar(_STR, value, style=style)


_Dumper.add_representer(str, _represent_text)


def dump_yaml(entries: list[Entry]) -> str:
    """The entries as a YAML knowledge base that `parse_yaml` reads back unchanged."""
    return yaml.dump(
        {"entries": [e.to_dict() for e in entries]},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )


def sample_path() -> Path:
    """The bundled sample FAQ of the fictional Tally product."""
    return Path(__file__).parent / "data" / "sample_faq.yaml"
