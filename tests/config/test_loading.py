import pytest

from s2s.config import ConfigError, get, load_config, recipes


def test_pair_file_sets_languages():
    zh_en, en_zh = load_config("zh-en"), load_config("en-zh")
    assert (zh_en["data"]["src_lang"], zh_en["data"]["tgt_lang"]) == ("zh", "en")
    assert (en_zh["data"]["src_lang"], en_zh["data"]["tgt_lang"]) == ("en", "zh")


def test_overrides_are_typed():
    config = load_config(
        "zh-en", overrides=["train.epochs=3", "search.alpha=0.8", "train.bucket_boundaries=[4, 8]"]
    )
    assert config["train"]["epochs"] == 3
    assert config["search"]["alpha"] == 0.8
    assert config["train"]["bucket_boundaries"] == [4, 8]
    exponent = load_config("zh-en", overrides=["train.learning_rate=1e-3", "train.clipnorm=1"])
    assert exponent["train"]["learning_rate"] == 0.001  # YAML alone would give the string
    assert isinstance(exponent["train"]["clipnorm"], float)
    with pytest.raises(ConfigError, match=r"train\.epochs must be a number"):
        load_config("zh-en", overrides=["train.epochs=many"])


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match=r"train\.epoch"):
        load_config("zh-en", overrides=["train.epoch=3"])


def test_unknown_pair_lists_known_ones():
    with pytest.raises(ConfigError, match="zh-en"):
        load_config("xx-yy")


def test_invalid_values_are_refused():
    with pytest.raises(ConfigError, match="attention"):
        load_config("zh-en", overrides=["model.attention=cosine"])
    with pytest.raises(ConfigError, match="bucket_boundaries"):
        load_config("zh-en", overrides=["train.bucket_boundaries=[8, 4]"])
    with pytest.raises(ConfigError, match="cell"):
        load_config("zh-en", overrides=["model.cell=transformer"])
    with pytest.raises(ConfigError, match="tie_embeddings"):
        load_config("zh-en", overrides=["model.tie_embeddings=true", "model.attention_dim=128"])
    with pytest.raises(ConfigError, match="lr_schedule"):
        load_config("zh-en", overrides=["train.lr_schedule=cosine"])
    with pytest.raises(ConfigError, match="decay_from"):
        load_config("zh-en", overrides=["train.decay_from=1.0"])
    with pytest.raises(ConfigError, match="word_dropout"):
        load_config("zh-en", overrides=["model.word_dropout=-0.1"])
    with pytest.raises(ConfigError, match="sampling_alpha"):
        load_config("zh-en", overrides=["tokenizer.sampling_alpha=-0.1"])
    with pytest.raises(ConfigError, match="sampling_nbest"):
        load_config("zh-en", overrides=["tokenizer.sampling_nbest=1"])


@pytest.mark.parametrize("value", ["maybe", "1", "null"])
def test_a_switch_takes_true_or_false_only(value):
    with pytest.raises(ConfigError, match=r"search\.jit_compile must be true or false"):
        load_config("zh-en", overrides=[f"search.jit_compile={value}"])
    assert load_config("zh-en", overrides=["search.jit_compile=true"])["search"]["jit_compile"]


def test_an_unknown_key_in_a_config_file_is_an_error_naming_file_and_key(tmp_path):
    """It used to be ignored: ``train: {epoch: 3}`` trained for the default 40 epochs."""
    path = tmp_path / "pair.yaml"
    path.write_text("data: {src_lang: zh, tgt_lang: en}\ntrain: {epoch: 3}\n")
    with pytest.raises(ConfigError, match=r"pair\.yaml: unknown key 'train\.epoch'.*train\.epochs"):
        load_config(path=path)
    path.write_text("data: {src_lang: zh, tgt_lang: en}\ntokenizer: {src: {vocab: 100}}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'tokenizer\.src\.vocab'"):
        load_config(path=path)
    path.write_text("data: {src_lang: zh, tgt_lang: en}\nmodel: 3\n")
    with pytest.raises(ConfigError, match=r"model is a section"):
        load_config(path=path)
    path.write_text("data: {src_lang: zh, tgt_lang: en, columns: {zh: 1, en: 0}}\n")
    assert load_config(path=path)["data"]["columns"] == {"zh": 1, "en": 0}  # free-form section


@pytest.mark.parametrize(
    "override",
    [
        "search.stopping=exactly",
        "train.precision=float8",
        "train.distribute=mirored",
        "model.bridge=none",
        "data.chinese_script=traditional",
        "tokenizer.src.model_type=wordpiece",
        "grid.cells=[lstm, transformer]",
    ],
)
def test_every_enumerated_key_is_checked_before_any_work(override):
    """These were caught only where they were used: after data, SentencePiece and training."""
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key} must be one of"):
        load_config("zh-en", overrides=[override])


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_data_workers_must_be_a_positive_count_or_null(value):
    with pytest.raises(ConfigError, match=r"data\.workers must be at least 1"):
        load_config("zh-en", overrides=[f"data.workers={value}"])


def test_the_components_take_their_choices_from_one_list():
    from s2s.config import choices
    from s2s.models import attention, cells, decoder
    from s2s.training import distribution

    assert tuple(cells.CELLS) == choices.CELLS
    assert attention.KINDS == choices.ATTENTION
    assert decoder.Bridge.KINDS == choices.BRIDGES
    assert distribution.STRATEGIES == choices.STRATEGIES
    config = load_config("zh-en")
    for dotted in choices.BY_KEY:  # every enumerated key exists in the defaults
        get(config, dotted)


def test_every_shipped_recipe_loads_and_validates():
    """A typo in a recipe (data/<name>.yaml) fails here, not minutes into a user's run."""
    assert {"zh-en", "en-zh", "zh-en-quick", "zh-en-tvsub"} <= set(recipes())
    for name in recipes():
        config = load_config(name)
        assert config["data"]["src_lang"] and config["data"]["tgt_lang"], name
