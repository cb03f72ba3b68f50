"""Normalisation: NFKC, control characters, spaces, Chinese punctuation and script; the
SentencePiece rules written from it."""

from __future__ import annotations

from s2s.text.normalize import normalize


def test_chinese_keeps_full_width_punctuation_while_nfkc_applies_elsewhere():
    assert normalize("你好，世界！真的？", "zh") == "你好，世界！真的？"
    assert normalize("ＡＢＣ１２３ 你好", "zh") == "ABC123 你好"
    assert normalize("Ｈｅｌｌｏ，  world！", "en") == "Hello, world!"


def test_control_characters_bom_and_spaces_are_normalised():
    assert normalize("\ufeffHi\x07  there\t!\r", "en") == "Hi there !"


def test_traditional_characters_become_simplified_only_when_asked():
    text = "我們說漢語，這臺電腦很貴！"
    assert normalize(text, "zh") == text
    assert normalize(text, "zh", "simplified") == "我们说汉语，这台电脑很贵！"
    assert normalize("Ｈｅｌｌｏ 漢", "en", "simplified") == "Hello 漢"  # Chinese text only


def test_the_sentencepiece_rules_convert_like_python(tmp_path):
    from s2s.text.tokenizer import Tokenizer, train_sentencepiece

    sentences = ["我们说汉语。", "这台电脑很贵！", "你好，世界？"] * 50
    model = train_sentencepiece(
        sentences, tmp_path / "zh", vocab_size=40, lang="zh", script="simplified"
    )
    sp = Tokenizer(model)
    for raw in ["我們說漢語。", "這臺電腦很貴！", "ＡＢＣ，漢"]:
        assert sp.encode([raw]) == sp.encode([normalize(raw, "zh", "simplified")])
    assert sp.decode(sp.encode(["我們說漢語。"])) == ["我们说汉语。"]
