"""Reading a /metrics answer as Prometheus would, and the documented table of metrics.

``documented()`` reads docs/metrics.md, so the tests check the metrics against
what users are told, not against a second list kept in the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
_ROW = re.compile(r"^\| `(?P<name>camsight_[a-z_]+)` \| (?P<kind>\w+) \| (?P<labels>[^|]*) \|")


@dataclass(frozen=True)
class Documented:
    name: str
    kind: str
    labels: frozenset[str]

    @property
    def family(self) -> str:
        """The parser's family name (a counter's without ``_total``)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name


def documented() -> dict[str, Documented]:
    """The rows of docs/metrics.md's table, by family name."""
    rows: dict[str, Documented] = {}
    for line in DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        labels = frozenset(re.findall(r"`([a-z_]+)`", match["labels"]))
        doc = Documented(match["name"], match["kind"], labels)
        rows[doc.family] = doc
    assert rows, f"no metrics table found in {DOC}"
    return rows


@dataclass
class Scrape:
    """One scrape: its families by name, and each sample's value by (sample name, sorted labels)."""

    kinds: dict[str, str]
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    #: Label names seen per family (``le`` of histogram buckets left out).
    labels: dict[str, set[frozenset[str]]]

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Every sample called ``name``, by its labels."""
        return {lab: v for (n, lab), v in self.samples.items() if n == name}


def parse(text: str) -> Scrape:
    """Parse the text exposition format with the official client's parser."""
    kinds: dict[str, str] = {}
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    labels: dict[str, set[frozenset[str]]] = {}
    for family in text_string_to_metric_families(text):
        kinds[family.name] = family.type
        seen = labels.setdefault(family.name, set())
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
            if not sample.name.endswith("_created"):
                seen.add(frozenset(k for k in sample.labels if k != "le"))
    return Scrape(kinds, samples, labels)


#: Families with samples only when several nodes share the database (tests/unit/test_nodes.py checks them).
ONLY_WITH_NODES = frozenset({"camsight_node_up"})


def assert_documented_families(scrape: Scrape, *, need_samples: bool = True) -> None:
    """Every documented family is in ``scrape`` with its documented type and labels, and nothing
    camsight exports is undocumented."""
    docs = documented()
    ours = {name for name in scrape.kinds if name.startswith("camsight_")}
    assert ours == set(docs), f"undocumented: {ours - set(docs)}; missing: {set(docs) - ours}"
    for name, doc in docs.items():
        assert scrape.kinds[name] == doc.kind, (name, scrape.kinds[name], doc.kind)
        if need_samples and name not in ONLY_WITH_NODES:
            assert scrape.labels[name], f"{name} has no samples"
        for found in scrape.labels[name]:
            assert found == doc.labels, (name, set(found), set(doc.labels))
