import pytest

from s2s.data.cleaning import clean
from s2s.text.normalize import normalize
from s2s.text.tokenizer import Tokenizer, train_sentencepiece
from s2s.text.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from tests.helpers import read_frame


@pytest.fixture(scope="module")
def zh_tokenizer(corpus_file, tmp_path_factory):
    frame, report = read_frame(corpus_file, {"en": 0, "zh": 1}, "zh", "en", limit=3000)
    frame = clean(frame, report, "zh", "en", max_chars=150)
    prefix = tmp_path_factory.mktemp("spm") / "zh"
    return Tokenizer(
        train_sentencepiece(
            frame["src"], prefix, vocab_size=1500, character_coverage=0.9995, lang="zh"
        )
    )


def test_the_model_normalises_raw_text_as_the_python_pipeline_does(zh_tokenizer, corpus_file):
    frame, _ = read_frame(corpus_file, {"en": 0, "zh": 1}, "zh", "en", limit=3000)
    awkward = ["１２３ＡＢＣ，你好！…", "a\u200bb  c\x07d\te", "（括号）：；？", "ｶﾀｶﾅ ㈱ ﬁ\u3000x"]
    raw = [*frame["src"], *awkward]
    assert zh_tokenizer.encode(raw) == zh_tokenizer.encode([normalize(t, "zh") for t in raw])


def test_special_ids_are_fixed(zh_tokenizer):
    sp = zh_tokenizer.sp
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID)


def test_full_width_punctuation_survives_a_round_trip(zh_tokenizer):
    text = "你好，我们走吧！你去吗？"
    [ids] = zh_tokenizer.encode([text])
    assert zh_tokenizer.decode([ids]) == [text]


def test_decode_stops_at_eos_and_skips_padding(zh_tokenizer):
    [ids] = zh_tokenizer.encode(["我们走吧。"])
    assert zh_tokenizer.decode([[*ids, EOS_ID, *ids, PAD_ID]]) == ["我们走吧。"]
    assert zh_tokenizer.decode([[PAD_ID, BOS_ID, EOS_ID]]) == [""]


def test_impossible_settings_are_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="vocab_size=20"):
        many_characters = "".join(chr(0x4E00 + i) for i in range(60))
        train_sentencepiece([many_characters] * 10, tmp_path / "x", vocab_size=20)
