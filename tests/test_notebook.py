"""analysis.ipynb runs clean, headless, on runs trained from the sample set."""


from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]     # the checkout


@pytest.fixture
def notebook_env(ae_run, classifier_run, tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_AE_RUN", str(ae_run))
    monkeypatch.setenv("ANALYSIS_CLASSIFIER_RUN", str(classifier_run))
    monkeypatch.setenv("ANALYSIS_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path / "figures"


def test_analysis_notebook_executes(notebook_env):
    nb = nbformat.read(ROOT / "analysis.ipynb", as_version=4)
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook without outputs"
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()   # raises CellExecutionError on the first failing cell
    figures = {p.name for p in notebook_env.glob("*.png")}
    assert figures == {"feature_statistics.png", "pca_explained_variance.png",
                       "kmeans_elbow.png", "genre_distributions.png", "track_embedding.png",
                       "timelines.png", "reconstructions.png", "confusion_matrix.png",
                       "learned_vs_dsp.png"}
    assert all((notebook_env / f).stat().st_size > 5000 for f in figures)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "segment accuracy" in outputs and "components keep" in outputs
