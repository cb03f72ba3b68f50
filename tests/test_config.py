import pytest

from s2s.config import ConfigError, load_config


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
