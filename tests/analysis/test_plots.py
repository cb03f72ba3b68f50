import os
import subprocess
import sys
import warnings

import numpy as np
from matplotlib import ft2font

from s2s.analysis import plots
from tests.helpers import ROOT


def test_attention_heatmap_draws_chinese_glyphs(tmp_path):
    source, output = ["▁我们", "走", "吧", "。"], ["▁Let", "'", "s", "▁go", ".", "</s>"]
    weights = np.random.default_rng(0).dirichlet(np.ones(4), size=len(output))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plots.attention_heatmap(source, output, weights, title="我们走吧。")
        path = plots.save(fig, tmp_path / "attention.png")
    assert not [w for w in caught if "missing from" in str(w.message)], caught
    assert path.stat().st_size > 5000
    covered = ft2font.FT2Font(str(plots.cjk_font_path())).get_charmap()
    assert all(ord(c) in covered for c in "".join(source) + "我们走吧。" if c != "▁")


def test_plot_command_saves_learning_curves_and_attention(trained_run, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for figure in ("curves", "attention"):
        out = tmp_path / f"{figure}.png"
        command = ["plot", figure, "--run", str(trained_run), "--out", str(out)]
        done = subprocess.run(
            [sys.executable, "-m", "s2s", *command],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert out.stat().st_size > 5000
