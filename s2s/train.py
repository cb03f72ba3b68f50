"""Training: data stage, SentencePiece, teacher-forced fitting, checkpoints, resume, final test.

``train(config, run_dir)`` is what ``make train`` runs. Running it again on the same folder
resumes from the last checkpoint (weights and optimizer state); a finished run is not retrained.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import keras
import tensorflow as tf
from tqdm.auto import tqdm

from s2s import data as data_lib
from s2s import distribute, runs
from s2s.evaluate import score, write_report
from s2s.loss import sequence_loss
from s2s.model import Seq2Seq
from s2s.pipeline import Buckets, filter_long, training_dataset
from s2s.runs import build_model, load_trained
from s2s.tokenizer import Tokenizer, train_sentencepiece
from s2s.translate import Translator


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


# -- stages -----------------------------------------------------------------------------------


def prepare_data(
    config: dict, paths: runs.RunPaths, corpus: Path | None = None, log=print
) -> data_lib.Splits:
    """Read, clean and split the corpus once per run; later calls read the saved split."""
    if (paths.data / "test.tsv").exists():
        return data_lib.load_splits(paths.data)
    splits, report = data_lib.prepare(config, corpus)
    log(report.summary())
    log(f"split: {splits.sizes()}")
    data_lib.save_splits(splits, paths.data)
    paths.cleaning.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return splits


def prepare_tokenizers(
    config: dict, paths: runs.RunPaths, splits: data_lib.Splits
) -> tuple[Tokenizer, Tokenizer]:
    """Train (once) and load the source and target SentencePiece models, on train only."""
    tokenizers = []
    for side in ("src", "tgt"):
        path = paths.spm(side)
        if not path.exists():
            options = config["tokenizer"][side]
            train_sentencepiece(
                splits.train[side],
                path.with_suffix(""),
                seed=config["data"]["seed"],
                lang=config["data"][f"{side}_lang"],
                script=config["data"]["chinese_script"],
                **options,
            )
        tokenizers.append(Tokenizer(path))
    return tokenizers[0], tokenizers[1]


@keras.saving.register_keras_serializable(package="s2s")
class InverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak`` over ``warmup`` steps, then ``peak * sqrt(warmup / step)``."""

    def __init__(self, peak: float, warmup: int):
        self.peak, self.warmup = peak, warmup

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0
        warmup = float(max(self.warmup, 1))
        return self.peak * tf.minimum(step / warmup, tf.sqrt(warmup / step))

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup}


def learning_rate(train: dict):
    """The optimizer's learning rate: a number (``constant``, ``plateau``) or a schedule."""
    if train["lr_schedule"] == "inverse_sqrt":
        return InverseSqrt(train["learning_rate"], train["warmup_steps"])
    return train["learning_rate"]


def compile_model(
    model: Seq2Seq, config: dict, jit_compile: bool | None = None, loss=sequence_loss
) -> Seq2Seq:
    """Adam, clipping and label smoothing of ``config["train"]``, and the training ``loss``."""
    train = config["train"]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate(train)),
        label_smoothing=train["label_smoothing"],
        clipnorm=train["clipnorm"],
        sequence_loss=loss,
        jit_compile=train["jit_compile"] if jit_compile is None else jit_compile,
    )
    model.optimizer.build(model.trainable_variables)
    return model


# -- callbacks --------------------------------------------------------------------------------


class ProgressBar(keras.callbacks.Callback):
    """A tqdm bar per epoch showing batches/s, ETA, loss and target tokens/s."""

    def __init__(self, steps: int, epochs: int):
        super().__init__()
        self.steps, self.epochs = steps, epochs
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        self.bar = tqdm(
            total=self.steps,
            desc=f"epoch {epoch + 1}/{self.epochs}",
            unit="batch",
            dynamic_ncols=True,
            mininterval=1.0 if os.isatty(2) else 30.0,
        )
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix(
            loss=f"{float(logs.get('loss', 0)):.3f}",
            tok_s=f"{float(logs.get('tokens', 0)) / elapsed:,.0f}",
            refresh=False,
        )
        self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.close()


class RunKeeper(keras.callbacks.Callback):
    """Dev BLEU after each epoch, best/last checkpoints, ``state.json``, patience, time budget.

    Dev BLEU is added to the epoch logs as ``val_bleu``/``val_chrf`` so that the CSV and
    TensorBoard loggers placed after this callback record it.
    """

    def __init__(
        self,
        paths: runs.RunPaths,
        translator: Translator,
        dev: data_lib.pd.DataFrame,
        config: dict,
        state: dict,
        log=print,
        agree=None,
    ):
        """``agree(flag) -> bool``: whether any worker raised ``flag``. Given under
        ``multi_worker``, where every worker must stop at the same epoch: the time budget is then
        checked at epoch ends, and the workers' clocks are put together."""
        super().__init__()
        self.agree = agree
        self.paths, self.translator, self.state, self.log = paths, translator, state, log
        self.dev_sources, self.dev_refs = data_lib.references(dev)  # once, not every epoch
        self.config = config
        self.budget_s = 60.0 * config["train"]["max_minutes"]
        self.patience = config["train"]["patience"]
        self.average_last = config["train"]["average_last"]
        self.out_of_time = False
        self.diverged: str | None = None

    def elapsed(self) -> float:
        return self.state["elapsed_s"] + time.perf_counter() - self.t0

    def on_train_begin(self, logs=None):
        self.paths.checkpoints.mkdir(parents=True, exist_ok=True)
        self.t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            self.diverged = f"the training loss became {loss} at batch {batch + 1}"
            self.model.stop_training = True
        if self.agree is None and self.elapsed() >= self.budget_s:
            self.out_of_time = self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.agree is not None and self.agree(self.elapsed() >= self.budget_s):
            self.out_of_time = self.model.stop_training = True
        if self.diverged:  # keep the last good checkpoint: save nothing from this epoch
            self.diverged += f" of epoch {epoch + 1}"
            return
        logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        t = time.perf_counter()
        dev = dev_scores(self.translator, self.dev_sources, self.dev_refs, self.config)
        logs.update(val_bleu=dev.bleu, val_chrf=dev.chrf, elapsed_min=self.elapsed() / 60)
        self.model.save_weights(self.paths.last_weights)
        self._keep_epoch_weights(epoch + 1)
        best = self.state["best_bleu"]
        improved = best is None or dev.bleu > best
        if improved:
            self.model.save_weights(self.paths.best_weights)
            self.state.update(best_bleu=dev.bleu, best_epoch=epoch + 1)
        self.state.update(epoch=epoch + 1, elapsed_s=self.elapsed())
        self.t0 = time.perf_counter()
        runs.write_state(self.paths, self.state)
        self.log(
            f"epoch {epoch + 1}: loss {logs.get('loss', math.nan):.3f}  "
            f"dev ppl {math.exp(min(logs.get('val_nll', math.nan), 50)):.1f}  "
            f"dev BLEU {dev.bleu:.2f}  chrF {dev.chrf:.2f}"
            f"{'  (best)' if improved else ''}  [dev search {time.perf_counter() - t:.0f}s, "
            f"{self.elapsed() / 60:.1f} min in]"
        )
        if epoch + 1 - self.state["best_epoch"] >= self.patience:
            self.log(f"no dev BLEU gain for {self.patience} epochs: stopping")
            self.model.stop_training = True
        if self.out_of_time:
            self.log(f"time budget of {self.budget_s / 60:.0f} min reached: stopping")

    def _keep_epoch_weights(self, epoch: int) -> None:
        """Keep the weights of the last ``average_last`` epochs for checkpoint averaging."""
        if self.average_last < 2:
            return
        self.model.save_weights(self.paths.epoch_weights(epoch))
        self.paths.epoch_weights(epoch - self.average_last).unlink(missing_ok=True)


def average_checkpoints(model: keras.Model, files: list[Path]) -> keras.Model:
    """Set ``model``'s weights to the mean of the weight files (float variables only)."""
    total = None
    for path in files:
        model.load_weights(path)
        values = [v.numpy() for v in model.weights]
        total = values if total is None else [t + v for t, v in zip(total, values, strict=True)]
    for variable, value in zip(model.weights, total, strict=True):
        if variable.dtype.startswith("float"):
            variable.assign(value / len(files))
    return model


def dev_scores(translator: Translator, sources: list[str], refs: list[list[str]], config: dict):
    """BLEU and chrF of ``translator`` on the dev sources against all their references."""
    hyps = [h.text for h in translator.translate(sources)]
    return score(hyps, refs, config["data"]["tgt_lang"], config["eval"]["tokenize"])


# -- the whole run ----------------------------------------------------------------------------


def train(
    config: dict, run_dir: str | Path, corpus: Path | None = None, log=print, loss=sequence_loss
) -> dict:
    """Train (or resume) the run in ``run_dir`` and evaluate its best checkpoint on test.

    ``loss``: the training loss (:func:`s2s.loss.sequence_loss`; tests pass others).
    """
    keras.utils.set_random_seed(config["train"]["seed"])
    if config["train"]["distribute"] == "multi_worker" and distribute.worker_index():
        # Only the chief writes the run folder; the others keep their own copies apart.
        run_dir = Path(run_dir) / f"worker-{distribute.worker_index()}"
    paths = runs.RunPaths(Path(run_dir))
    runs.start(paths, config)
    state = runs.read_state(paths)
    splits = prepare_data(config, paths, corpus, log)
    src_tok, tgt_tok = prepare_tokenizers(config, paths, splits)

    if not state["finished"]:
        fit(config, paths, state, splits, src_tok, tgt_tok, log, loss)
    _, model, _, _ = load_trained(paths.root)
    return evaluate_test(config, paths, model, src_tok, tgt_tok, splits, log)


def fit(config, paths, state, splits, src_tok, tgt_tok, log=print, loss=sequence_loss) -> None:
    train_cfg = config["train"]
    strategy = distribute.make_strategy(train_cfg)
    buckets = Buckets(
        tuple(train_cfg["bucket_boundaries"]),
        train_cfg["batch_tokens"],
        row_multiple=strategy.num_replicas_in_sync,
    )
    src_ids, tgt_ids, too_long = filter_long(
        src_tok.encode(splits.train["src"]), tgt_tok.encode(splits.train["tgt"]), buckets
    )
    if too_long:
        log(f"skipping {too_long} training pairs longer than {buckets.max_length} pieces")
    dev_src, dev_tgt, _ = filter_long(
        src_tok.encode(splits.dev["src"]), tgt_tok.encode(splits.dev["tgt"]), buckets
    )
    train_ds = training_dataset(
        src_ids, tgt_ids, buckets, shuffle=True, seed=train_cfg["seed"] + state["epoch"]
    )
    dev_ds = training_dataset(dev_src, dev_tgt, buckets, shuffle=False)
    steps = int(train_ds.cardinality())

    # XLA does not compile a step that holds cross-replica reductions.
    jit = train_cfg["jit_compile"] and not distribute.is_distributed(strategy)
    with strategy.scope(), distribute.precision(train_cfg["precision"]):
        model = compile_model(build_model(config, src_tok, tgt_tok), config, jit, loss)
    if distribute.is_distributed(strategy):
        log(
            f"{train_cfg['distribute']}: {strategy.num_replicas_in_sync} replicas, "
            f"batches of ~{buckets.batch_tokens} tokens split between them"
            + ("; no XLA under distribution" if train_cfg["jit_compile"] else "")
        )
    if state["epoch"]:
        model.load_weights(paths.last_weights)
        log(
            f"resuming from epoch {state['epoch']} ({state['elapsed_s'] / 60:.1f} min trained, "
            f"optimizer step {int(model.optimizer.iterations.numpy())}, "
            f"best dev BLEU {state['best_bleu']:.2f})"
        )
    log(
        f"model: {model.count_params():,} parameters, "
        f"{distribute.resolve_precision(train_cfg['precision'])}; {len(src_ids):,} training "
        f"pairs in {steps} batches of ~{buckets.batch_tokens} tokens"
    )
    translator = Translator.from_config(
        model, src_tok, tgt_tok, config, beam_size=train_cfg["dev_beam_size"]
    )
    paths.logs.mkdir(parents=True, exist_ok=True)
    agree = distribute.any_worker(strategy) if train_cfg["distribute"] == "multi_worker" else None
    keeper = RunKeeper(paths, translator, splits.dev, config, state, log, agree)
    callbacks = [
        ProgressBar(steps, train_cfg["epochs"]),
        keeper,
        keras.callbacks.CSVLogger(str(paths.logs / "train.csv"), append=True),
        keras.callbacks.TensorBoard(str(paths.logs / "tensorboard"), write_graph=False),
    ]
    if train_cfg["lr_schedule"] == "plateau":  # after RunKeeper, which puts val_bleu in the logs
        callbacks.insert(
            2,
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_bleu", mode="max", factor=0.5, patience=train_cfg["plateau_patience"]
            ),
        )
    if state["epoch"] < train_cfg["epochs"]:
        model.fit(
            train_ds,
            validation_data=dev_ds,
            epochs=train_cfg["epochs"],
            initial_epoch=state["epoch"],
            callbacks=callbacks,
            verbose=0,
            shuffle=False,
        )
    if keeper.diverged:
        raise TrainingDiverged(
            f"{keeper.diverged}: training stopped. The last good checkpoint is kept "
            f"({paths.last_weights}, epoch {state['epoch']}); lower train.learning_rate or "
            f"train.clipnorm and run again to resume from it."
        )
    model.load_weights(paths.best_weights)
    averaged = try_averaging(config, paths, state, splits, src_tok, tgt_tok, log)
    (averaged or model).save(paths.model, include_optimizer=False)
    state["finished"] = True
    runs.write_state(paths, state)


def kept_epochs(paths: runs.RunPaths, last: int, n: int) -> list[int]:
    """The epochs among the last ``n`` up to ``last`` whose weights were kept for averaging."""
    return [e for e in range(max(last - n + 1, 1), last + 1) if paths.epoch_weights(e).exists()]


def try_averaging(config, paths, state, splits, src_tok, tgt_tok, log=print):
    """Average the last epochs' weights; return that model if it beats the best one on dev."""
    epochs = kept_epochs(paths, state["epoch"], config["train"]["average_last"])
    files = [paths.epoch_weights(e) for e in epochs]
    if len(files) < 2:
        return None
    with distribute.precision(config["train"]["precision"]):
        model = build_model(config, src_tok, tgt_tok)
    model = average_checkpoints(compile_model(model, config), files)
    translator = Translator.from_config(
        model, src_tok, tgt_tok, config, beam_size=config["train"]["dev_beam_size"]
    )
    dev = dev_scores(translator, *data_lib.references(splits.dev), config)
    better = dev.bleu > state["best_bleu"]
    log(
        f"average of the last {len(files)} epochs: dev BLEU {dev.bleu:.2f} vs best single "
        f"{state['best_bleu']:.2f} (epoch {state['best_epoch']}): "
        f"{'using the average' if better else 'keeping the single best'}"
    )
    state["averaged"] = {
        "epochs": epochs,
        "dev_bleu": dev.bleu,
        "used": bool(better),
    }
    return model if better else None


def evaluate_test(
    config, paths, model, src_tok, tgt_tok, splits, log=print, split_name: str = "test"
) -> dict:
    """Beam-search the test split with the run's search settings and score it."""
    translator = Translator.from_config(model, src_tok, tgt_tok, config)
    frame = getattr(splits, split_name)
    sources, refs = data_lib.references(frame)
    t = time.perf_counter()
    hyps = [h.text for h in translator.translate(sources)]
    seconds = time.perf_counter() - t
    scores = score(hyps, refs, config["data"]["tgt_lang"], config["eval"]["tokenize"])
    state = runs.read_state(paths)
    extra = {
        "split": split_name,
        "beam_size": translator.beam_size,
        "alpha": translator.alpha,
        "decode_seconds": round(seconds, 2),
        "best_epoch": state.get("best_epoch"),
        "averaged": state.get("averaged"),
        "epochs": state.get("epoch"),
        "train_minutes": round(state.get("elapsed_s", 0) / 60, 2),
    }
    write_report(paths.eval, split_name, sources, hyps, scores, extra)
    log(
        f"{split_name}: {len(sources)} sentences, beam {translator.beam_size}, "
        f"{len(sources) / seconds:.0f} sentences/s\n{scores.summary()}"
    )
    return {**scores.as_dict(), **extra}
