import json
import shutil

from s2s.analysis.experiment_log import experiment_log, summarize
from s2s.config import run_folder as runs


def test_the_log_row_comes_from_what_the_run_wrote(trained_run, tmp_path):
    row = summarize(trained_run)
    report = json.loads((trained_run / "eval" / "test.json").read_text())
    state = runs.read_state(runs.RunPaths(trained_run))
    assert row["test_bleu"] == report["bleu"] and row["epochs"] == state["epoch"] == 2
    assert "train.epochs=2" in row["changes"] and "model.embedding_dim=32" in row["changes"]
    assert row["tok_s"] > 0 and "chosen on dev" not in row["changes"]
    state["tuned"] = {"alpha": 1.2, "dev_bleu": [[0.6, 1.0], [1.2, 2.0]]}
    state["epoch"] = 28.432105  # a time budget ends a run inside an epoch
    runs.write_state(runs.RunPaths(tmp_path / "run"), state)
    shutil.copy(trained_run / "config.yaml", tmp_path / "run")
    averaged = {"used": True, "steps": [1, 2, 3], "dev_bleu": 33.61786741050337}
    (tmp_path / "run" / "eval").mkdir()
    (tmp_path / "run" / "eval" / "test.json").write_text(
        json.dumps({**report, "averaged": averaged})
    )
    tuned = summarize(tmp_path / "run")
    assert tuned["changes"].endswith("(averaged 3 checkpoints) (alpha 1.2 chosen on dev)")
    assert (tuned["epochs"], tuned["dev_bleu"]) == (28.43, 33.62)  # as the table shows them
    state["tuned"] = {"beam_size": 8, "alpha": 0.8, "dev_bleu": [[8, 0.8, 2.0]]}
    runs.write_state(runs.RunPaths(tmp_path / "run"), state)
    assert summarize(tmp_path / "run")["changes"].endswith("(beam 8, alpha 0.8 chosen on dev)")
    table = experiment_log([trained_run, tmp_path])  # not a run folder: skipped
    assert table.count(str(trained_run)) == 1 and "| test BLEU |" in table
