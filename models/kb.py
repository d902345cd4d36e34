"""Knowledge-base files: FAQ entries in YAML, or labelled example questions in CSV.

Parsing is all-or-nothing: a malformed file raises `KbError` naming the line, and
nothing is returned, so an import never half-applies.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_TEXT = 4000
# libyaml's parser reads the sample FAQ in 3 ms against the pure-Python parser's 80 ms (start-up)
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


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


def load_file(path: Path, answers: Path | None = None) -> list[Entry]:
    """Entries from a `.yaml`/`.yml` FAQ or a `.csv` of labelled questions."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KbError(f"{path}: cannot read the file ({exc})") from exc
    if path.suffix.lower() == ".csv":
        answer_map = load_answers(answers) if answers else {}
        return parse_csv(text, answer_map, source=str(path))
    return parse_yaml(text, source=str(path))


def parse_yaml(text: str, source: str = "<yaml>") -> list[Entry]:
    """Entries from YAML: a list, or a mapping with an `entries` list."""
    try:
        nodes = _compose(text)
    except yaml.YAMLError as exc:
        raise KbError(f"{source}: not valid YAML: {exc}") from exc
    items = _entry_nodes(nodes, source)
    entries = [_entry_from_node(node, source) for node in items]
    _check_unique(entries, source)
    return entries


def _compose(text: str) -> yaml.Node | None:
    """The YAML node tree, parsed by libyaml when it can; errors come from the pure-Python parser."""
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        return yaml.compose(text)  # its messages are the ones users have seen (same line, column)


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
    """Validate one YAML entry, naming its line on error."""
    where = f"{source}, line {node.start_mark.line + 1}"
    data = yaml.SafeLoader("").construct_document(node) if isinstance(node, yaml.Node) else None
    if not isinstance(data, dict):
        raise KbError(f"{where}: an entry must be a mapping with id, question and answer")
    unknown = set(data) - {"id", "question", "alternates", "answer", "tags", "links"}
    if unknown:
        raise KbError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    return make_entry(data, where)


def make_entry(data: dict[str, Any], where: str = "entry") -> Entry:
    """Build an `Entry` from plain values, checking every field."""
    entry_id = _text(data.get("id"), "id", where)
    if not _ID.match(entry_id):
        raise KbError(f"{where}: id {entry_id!r} must be letters, digits, '-', '_', '.' or ':'")
    return Entry(
        id=entry_id,
        question=_text(data.get("question"), "question", where),
        answer=_text(data.get("answer"), "answer", where),
        alternates=_texts(data.get("alternates"), "alternates", where),
        tags=_texts(data.get("tags"), "tags", where),
        links=_texts(data.get("links"), "links", where),
    )


def _text(value: Any, name: str, where: str) -> str:
    """A required, non-empty, bounded string field."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise KbError(f"{where}: '{name}' is missing or empty")
    if not isinstance(value, str | int | float):
        raise KbError(f"{where}: '{name}' must be text")
    text = str(value).strip()
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


def _check_unique(entries: list[Entry], source: str) -> None:
    """Refuse a file that defines the same id twice."""
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise KbError(f"{source}: the id {entry.id!r} is used twice")
        seen.add(entry.id)


def read_labelled(text: str, source: str = "<csv>") -> list[tuple[str, str]]:
    """Rows of a `text,label` CSV, naming the line of any malformed row."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:2]] != ["text", "label"]:
        raise KbError(f"{source}, line 1: the header must be 'text,label'")
    rows = []
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise KbError(f"{source}, line {line}: expected a text and a label")
        rows.append((row[0].strip(), row[1].strip()))
    return rows


def parse_csv(text: str, answers: dict[str, str], source: str = "<csv>") -> list[Entry]:
    """Entries from labelled questions: one entry per label, its first question canonical."""
    grouped: dict[str, list[str]] = {}
    for question, label in read_labelled(text, source):
        grouped.setdefault(label, []).append(question)
    entries = []
    for label, questions in grouped.items():
        answer = answers.get(label, f"(no answer written yet for '{label}')")
        data = {"id": label, "question": questions[0], "alternates": questions[1:]}
        entries.append(make_entry({**data, "answer": answer}, f"{source}, label {label!r}"))
    return entries


def load_answers(path: Path) -> dict[str, str]:
    """Answers by label from a CSV `label,answer` or a YAML mapping label → answer."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        return {row[0].strip(): row[1].strip() for row in rows[1:] if len(row) >= 2}
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise KbError(f"{path}: answers must map each label to its answer")
    return {str(k): str(v) for k, v in data.items()}


def dump_yaml(entries: list[Entry]) -> str:
    """The entries as a YAML knowledge base that `parse_yaml` reads back unchanged."""
    return yaml.safe_dump(
        {"entries": [e.to_dict() for e in entries]}, sort_keys=False, allow_unicode=True, width=100
    )


def sample_path() -> Path:
    """The bundled sample FAQ of the fictional Tally product."""
    return Path(__file__).parent / "data" / "sample_faq.yaml"
