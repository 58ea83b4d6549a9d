"""`tickwise historical` prints the meta model's pooled out-of-sample AUC beside the primary's."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from tickwise.cli.historical import _oos_summary
from tickwise.pipelines.historical.oos import FoldOutcome, OosOutcome

T = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)


def _outcome(metrics: dict[str, float], meta_labels: int = 0) -> OosOutcome:
    fold = FoldOutcome("f1", 0, T, T, T, None, reused=False)
    return OosOutcome(folds=[fold], rows=100, metrics=metrics, meta_labels=meta_labels)


def test_the_summary_names_the_meta_models_out_of_sample_auc_and_the_meta_labels_set() -> None:
    console = Console(record=True, width=200)
    metrics = {"oos_auc": 0.57, "oos_events": 900.0, "oos_meta_auc": 0.61, "oos_meta_events": 240.0}
    _oos_summary(console, _outcome(metrics, meta_labels=230), [])
    text = console.export_text()
    assert "meta model: out-of-sample AUC 0.6100 over 240 proposals; 230 labels.meta set" in text


def test_without_a_meta_model_the_summary_has_no_meta_line() -> None:
    console = Console(record=True, width=200)
    _oos_summary(console, _outcome({"oos_auc": 0.57, "oos_events": 900.0}), [])
    assert "meta model" not in console.export_text()
