"""Writes tests/data/cleaning/*.tsv and expected.json (run from the project root): each file
holds good pairs and a known number of bad ones, for tests/test_data.py."""

import json
from pathlib import Path

out = Path("tests/data/cleaning")
GOOD = [
    "I like tea.\t我喜欢茶。\tCC-BY s2s",
    "The door is open.\t门开着。\tCC-BY s2s",
    "It is raining.\t下雨了。\tCC-BY s2s",
    "She reads books.\t她看书。\tCC-BY s2s",
    "We are friends.\t我们是朋友。\tCC-BY s2s",
]


def enc(lines):  # str lines or bytes
    return b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)


cases = {}


def case(name, lines, dropped, first, kept=5, extra=None):
    (out / f"{name}.tsv").write_bytes(enc(lines) if isinstance(lines, list) else lines)
    cases[name] = {
        "report": {"lines_read": kept + sum(dropped.values()), "kept": kept, "dropped": dropped},
        "first_line": first,
        **(extra or {}),
    }


g = GOOD
case(
    "invalid_utf8",
    [
        g[0],
        b"\xff\xfeHello\t\xe4\xbd",
        g[1],
        b"Caf\xe9.\t\xe5\x92\x96\xe5\x95\xa1\xe3\x80\x82",
        g[2],
        g[3],
        b"Ok.\t\xc3\x28",
        g[4],
    ],
    {"invalid_utf8": 3},
    {"invalid_utf8": 2},
)
case(
    "wrong_columns",
    [g[0], "No tab here.", g[1], "", g[2], "又一个没有制表符的句子", g[3], g[4]],
    {"wrong_columns": 3},
    {"wrong_columns": 2},
)
case(
    "empty",
    [g[0], " \t你好。", g[1], "Hello.\t   ", "\t", g[2], "\u200b\t好。", g[3], g[4]],
    {"empty": 4},
    {"empty": 2},
)
case(
    "too_long",
    [
        g[0],
        "x" * 151 + "\t长。",
        g[1],
        "Long.\t" + "长" * 151,
        g[2],
        "y" * 150 + "\t" + "长" * 150,
        g[3],
        g[4],
    ],
    {"too_long": 2},
    {"too_long": 2},
    kept=6,
)
case(
    "same_as_source",
    [g[0], "OK.\tOK.", g[1], "123\t１２３", g[2], g[3], g[4]],
    {"same_as_source": 2},
    {"same_as_source": 2},
)
case(
    "no_chinese",
    [g[0], "Tom.\tTom!", g[1], "Hello.\tこんにちは", g[2], "Yes.\tはい。", g[3], g[4]],
    {"no_chinese": 3},
    {"no_chinese": 2},
)
case(
    "duplicate",
    [
        g[0],
        g[1],
        g[0],
        g[2],
        "I like tea.\t我喜欢茶。\tanother attribution",
        g[3],
        "I like tea.  \t我喜欢茶。 ",
        g[4],
    ],
    {"duplicate": 3},
    {"duplicate": 3},
)
normalised = (
    "\ufeffI like tea.\t我喜欢茶。\r\n"
    "Ｒｏｏｍ １０１.\t１０１号房间，好吗？\r\n"
    "Stop\x07 it.\t别\x1b闹了！\n"
    "Tab\u200bs and  spaces.\t空格　和 制表符。\n"
).encode()
case(
    "normalised",
    normalised,
    {},
    {},
    kept=4,
    extra={
        "pairs": [
            ["我喜欢茶。", "I like tea."],
            ["101号房间，好吗？", "Room 101."],
            ["别闹了！", "Stop it."],
            ["空格 和 制表符。", "Tabs and spaces."],
        ]
    },
)
(out / "expected.json").write_text(
    json.dumps(cases, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
)
print(sorted(cases))
