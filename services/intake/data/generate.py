"""Build train.jsonl, valid.jsonl and test.jsonl from template families and hand-written lines.

    python services/intake/data/generate.py        # deterministic (fixed seed)

Sources
- templates.py: per label, families of patterns ("[a|b|]" alternatives,
  "{slot}" values from slots.py, "!" = urgent).
- handwritten/<label>.txt: free-form messages, one per line ("!" = urgent).

Splits are made so that the held-out figures are honest:
- whole template FAMILIES go to train, valid or test (never split across);
- every slot vocabulary and every typo/pinyin/English substitution table is
  split too: about a third of the values are used only by valid/test;
- hand-written lines are split by a stable hash of the text (60/20/20), except
  the examples quoted in the intake issue, which are pinned to train;
- any valid/test message whose normalised text also occurs in train is dropped.
Then noise is added the way residents type: no or odd punctuation, typos and
homophones, dropped or doubled characters, particles (啊呢吧哈), greetings and
"thanks" around the message, emoji, dialect words, pinyin and English words.
"""

from __future__ import annotations

import json
import random
import sys
import zlib
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[2]))

from slots import SLOTS  # noqa: E402
from templates import FAMILIES as _BASE  # noqa: E402
from templates_more import MORE  # noqa: E402

from services.intake.classifier.features import _TRAD_PAIRS, normalize  # noqa: E402
from shared.taxonomy import LABELS  # noqa: E402

SEED = 20260514
# every label: the families of templates.py, then the second phrasings of templates_more.py
FAMILIES = {label: _BASE[label] + MORE.get(label, []) for label in _BASE}
TRAIN_PER_LABEL = 430       # from templates; hand-written lines come on top
HELDOUT_PER_LABEL = 50      # per held-out split, from templates
HAND_COPIES = 3             # noisy copies of each hand-written train line
HELDOUT_FAMILY_SHARE = 0.18  # of each label's families, for valid and for test each

# Examples quoted in the intake issue: always in train (they are our spec).
PINNED_TRAIN = {
    "楼上漏水了邻居不理", "灯坏了好几天", "水管爆了", "有人在楼道充电瓶车", "我妈一个人在家想找人陪陪",
    "退休认证咋弄", "老板拖欠工资三个月", "孩子放学没人接", "想报个太极班", "冰箱里还有吃的吗",
    "想捐几本书", "我想当志愿者", "你好", "测试", "the light in stairwell is broken", "can i donate food to the fridge",
}


def _heldout_value(kind: str, value: str) -> bool:
    return zlib.crc32(f"{kind}\x00{value}".encode()) % 3 == 0


# ---------------------------------------------------------------- grammar
def _parse(pattern: str, i: int = 0, stop: str = "") -> tuple[list, int]:
    """Parse into a sequence of str | ("slot", name) | ("alt", [sequence, ...])."""
    seq: list = []
    buf = ""
    while i < len(pattern):
        ch = pattern[i]
        if ch in stop:
            break
        if ch == "[":
            if buf:
                seq.append(buf)
                buf = ""
            options = []
            i += 1
            while True:
                option, i = _parse(pattern, i, "|]")
                options.append(option)
                if pattern[i] == "]":
                    i += 1
                    break
                i += 1  # "|"
            seq.append(("alt", options))
            continue
        if ch == "{":
            if buf:
                seq.append(buf)
                buf = ""
            j = pattern.index("}", i)
            seq.append(("slot", pattern[i + 1 : j]))
            i = j + 1
            continue
        buf += ch
        i += 1
    if buf:
        seq.append(buf)
    return seq, i


def _render(seq: list, rng: random.Random, slot_values) -> str:
    out = []
    for item in seq:
        if isinstance(item, str):
            out.append(item)
        elif item[0] == "slot":
            out.append(slot_values(item[1]))
        else:
            out.append(_render(rng.choice(item[1]), rng, slot_values))
    return "".join(out)


# ---------------------------------------------------------------- noise
TYPOS = {
    "在": ["再"], "再": ["在"], "的": ["得", "地"], "得": ["的"], "坏": ["怀", "环"], "维修": ["维休", "为修"],
    "漏": ["露", "楼"], "电梯": ["电题", "电体"], "楼道": ["楼到", "楼倒"], "垃圾": ["拉圾", "垃级", "拉级"],
    "报名": ["报明", "抱名"], "志愿者": ["自愿者", "志原者"], "冰箱": ["冰相", "兵箱"], "煤气": ["媒气", "煤汽"],
    "着火": ["着伙", "着货"], "摔倒": ["摔到", "率倒"], "晕倒": ["晕到"], "暖气": ["暖器", "暖汽"],
    "工资": ["工姿", "公资"], "押金": ["压金", "鸭金"], "调解": ["调节", "条解"], "孩子": ["孩纸", "孩字"],
    "已经": ["以经", "已近"], "知道": ["知到", "只道"], "办理": ["半理", "办里"], "认证": ["人证", "认正"],
    "医保": ["一保", "医宝"], "社区": ["设区", "社曲"], "邻居": ["林居", "邻局"], "太极": ["太级", "泰极"],
    "书法": ["书发"], "编织": ["编制"], "下水道": ["下水到"], "通知": ["通之"], "师傅": ["师父"],
    "厕所": ["侧所"], "麻烦": ["嘛烦", "麻凡"], "现在": ["现再"], "怎么": ["怎莫", "咋么"], "什么": ["神马", "什莫"],
    "没有": ["木有", "没由"], "谢谢": ["3q", "谢了"], "帮忙": ["邦忙"], "老人": ["老仁"], "楼上": ["楼尚"],
    "停水": ["停税"], "处理": ["出理", "处里"], "申请": ["申清", "伸请"], "补贴": ["补帖", "不贴"],
    "活动": ["活懂", "火动"], "讲座": ["讲坐"], "托管": ["拖管", "托关"], "辅导": ["辅到", "付导"],
    "预约": ["预越", "余约"], "投票": ["头票"], "建议": ["见议", "建意"], "电动车": ["电动cha", "电懂车"],
    "充电": ["冲电"], "偷": ["头"], "打架": ["打价"], "小区": ["小曲", "晓区"], "房东": ["房冬"],
    "律师": ["律思"], "赔偿": ["陪偿", "赔尝"], "捐": ["卷", "娟"], "积分": ["基分", "积份"], "换": ["还"],
    "陪": ["赔"], "照顾": ["照故"], "心理": ["心里"], "安装": ["按装"], "停车": ["挺车"], "问题": ["文题"],
}
DIALECT = {
    "怎么": ["咋", "阿么", "咋么", "咋个"], "什么": ["啥", "撒子", "啥子"], "没有": ["没得", "么有", "莫有"],
    "很": ["胡", "太"], "一下": ["一哈", "一哈子"], "孩子": ["娃", "娃娃", "尕娃"], "父亲": ["老汉"],
    "干什么": ["干啥", "弄啥"], "不知道": ["不晓得", "不造"], "聊天": ["谝传", "谝闲传"], "这里": ["这搭", "这哒"],
    "那里": ["那搭", "那哒"], "非常": ["胡", "攒劲"], "漂亮": ["心疼"], "小": ["尕"],
}
PINYIN = {
    "电梯": "dianti", "垃圾": "laji", "冰箱": "bingxiang", "漏水": "loushui", "志愿者": "zhiyuanzhe",
    "报名": "baoming", "调解": "tiaojie", "煤气": "meiqi", "工资": "gongzi", "太极": "taiji", "暖气": "nuanqi",
    "停水": "tingshui", "孩子": "haizi", "老人": "laoren", "书屋": "shuwu", "认证": "renzheng", "医保": "yibao",
    "押金": "yajin", "托管": "tuoguan", "投票": "toupiao", "着火": "zhaohuo", "老鼠": "laoshu", "房东": "fangdong",
}
ENGLISH = {
    "电梯": ["lift", "elevator"], "灯": ["light"], "垃圾": ["rubbish", "garbage"], "冰箱": ["fridge"],
    "志愿者": ["volunteer"], "报名": ["sign up", "register"], "老师": ["teacher"], "孩子": ["kid"], "书": ["book"],
    "水管": ["water pipe"], "暖气": ["heating"], "房东": ["landlord"], "工资": ["salary"], "活动": ["activity"],
    "课": ["class"], "问题": ["problem"], "帮忙": ["help"], "老人": ["old people"], "押金": ["deposit"],
    "律师": ["lawyer"], "邻居": ["neighbour"], "停车": ["parking"], "医院": ["hospital"], "证明": ["certificate"],
    "着火": ["fire"], "煤气": ["gas"], "老鼠": ["rats"], "捐": ["donate"], "谢谢": ["thx", "thanks"],
}
PARTICLES = ["啊", "呢", "吧", "哈", "呀", "嘛", "哦", "啦", "了", "噢", "额", "哇", "嘞", "么"]
PREFIXES = ["你好", "您好", "请问", "麻烦问下", "喂", "在吗", "社区的同志", "打扰一下", "领导", "师傅", "hi",
            "小助手", "问一下", "我想问下", "咨询一下", "工作人员你好", "社区你好", "同志你好", "hello", "急"]
SUFFIXES = ["谢谢", "麻烦了", "谢谢啦", "辛苦了", "急", "急急急", "快点", "尽快处理", "求助", "帮帮忙", "拜托了",
            "在线等", "谢谢社区", "thanks", "谢谢了", "多谢", "麻烦你们了", "盼回复"]
# Where the resident says they live; label-neutral context residents often start with.
CONTEXTS = ["我是{bldg}的", "我是{bldg}的住户", "{community}社区", "我住{bldg}", "{community}社区{bldg}",
            "我是{community}的", "我们{bldg}", "我家住{bldg}"]
EMOJI = ["🙏", "😭", "😡", "👍", "😊", "😂", "😤", "🤔", "😢", "🥺", "❤️", "😓", "🙏🙏", "😩", "👌"]
_TO_TRAD = {s: t for t, s in zip(_TRAD_PAIRS[0::2], _TRAD_PAIRS[1::2]) if s != t}


class Noise:
    def __init__(self, heldout: bool):
        self.typos = {k: v for k, v in TYPOS.items() if _heldout_value("typo", k) == heldout}
        self.pinyin = {k: v for k, v in PINYIN.items() if _heldout_value("pinyin", k) == heldout}
        self.english = {k: v for k, v in ENGLISH.items() if _heldout_value("english", k) == heldout}

    @staticmethod
    def _replace(text: str, table: dict, rng: random.Random) -> str:
        keys = [k for k in table if k in text]
        if not keys:
            return text
        key = rng.choice(keys)
        value = table[key]
        value = rng.choice(value) if isinstance(value, list) else value
        if value.isascii() and rng.random() < 0.7:
            value = f" {value} "
        return text.replace(key, value, 1)

    def apply(self, text: str, rng: random.Random, english: bool, context=None) -> str:
        r = rng.random
        if not english:
            if r() < 0.25:
                text = self._replace(text, self.typos, rng)
            if r() < 0.08:
                text = self._replace(text, self.typos, rng)
            if r() < 0.18:
                text = self._replace(text, DIALECT, rng)
            if r() < 0.04:
                text = self._replace(text, self.pinyin, rng)
            if r() < 0.05:
                text = self._replace(text, self.english, rng)
            if r() < 0.02:
                text = "".join(_TO_TRAD.get(ch, ch) if r() < 0.7 else ch for ch in text)
            if len(text) > 6 and r() < 0.07:
                i = rng.randrange(len(text))
                if text[i] != " ":
                    text = text[:i] + text[i + 1 :]
            if len(text) > 4 and r() < 0.03:
                i = rng.randrange(len(text))
                text = text[:i] + text[i] + text[i:]
        # separators: templates use spaces between clauses
        sep = rng.choices(["", " ", "，", ",", "。", "  ", "、"], [40, 25, 15, 8, 6, 3, 3])[0] if not english else " "
        text = " ".join(text.split()) if english else text.replace(" ", sep)
        if not english and r() < 0.22:
            text += rng.choice(PARTICLES)
        if not english and context is not None and r() < 0.08:
            text = context() + rng.choice(["", " ", "，"]) + text
        if r() < 0.13:
            text = rng.choice(PREFIXES) + rng.choice(["", " ", "，", ",", "!"]) + text
        if r() < 0.13:
            text += rng.choice(["", " ", "，", "。"]) + rng.choice(SUFFIXES)
        end = rng.choices(["", "！", "!!!", "？", "??", "。", "...", "~", "。。。", "！！"], [55, 8, 5, 8, 3, 8, 5, 2, 3, 3])[0]
        text += end
        if r() < 0.07:
            text += rng.choice(EMOJI)
        if english and r() < 0.3:
            text = text.capitalize()
        return text.strip()


def _is_english(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(ch.isascii() for ch in letters) / len(letters) > 0.8


def _slot_picker(rng: random.Random, heldout: bool):
    train_values = {k: [v for v in vs if not _heldout_value(k, v)] for k, vs in SLOTS.items()}
    held_values = {k: [v for v in vs if _heldout_value(k, v)] for k, vs in SLOTS.items()}

    def pick(name: str) -> str:
        if heldout and held_values[name] and rng.random() < 0.5:
            return rng.choice(held_values[name])
        return rng.choice(train_values[name] or SLOTS[name])

    return pick


def _family_splits(rng: random.Random) -> dict[tuple[str, int], str]:
    """Held-out families are those with the smallest hash of their first pattern:
    stable when families are added, and independent of the order they are written in."""
    assignment = {}
    for label in LABELS:
        families = FAMILIES[label]
        order = sorted(range(len(families)), key=lambda i: zlib.crc32(f"{SEED}:{families[i][0]}".encode()))
        k = max(2, round(HELDOUT_FAMILY_SHARE * len(order)))
        for n, index in enumerate(order):
            assignment[(label, index)] = "valid" if n < k else "test" if n < 2 * k else "train"
    return assignment


def _generate_family(label: str, index: int, split: str, count: int, rng: random.Random) -> list[dict]:
    heldout = split != "train"
    noise = Noise(heldout)
    pick = _slot_picker(rng, heldout)
    patterns = FAMILIES[label][index]
    parsed = []
    for pattern in patterns:
        urgent = pattern.startswith("!")
        parsed.append((urgent, _parse(pattern[1:] if urgent else pattern)[0]))
    def context() -> str:
        return _render(_parse(rng.choice(CONTEXTS))[0], rng, pick)

    out, seen, attempts = [], set(), 0
    while len(out) < count and attempts < count * 20:
        attempts += 1
        urgent, seq = rng.choice(parsed)
        raw = " ".join(_render(seq, rng, pick).split())
        if not raw:
            continue
        text = noise.apply(raw, rng, _is_english(raw), context)
        key = normalize(text)
        if not key or key in seen:
            continue
        seen.add(key)
        out.append({"text": text, "label": label, "urgent": urgent, "src": f"t:{label}:{index:02d}"})
    return out


def _handwritten(label: str) -> list[tuple[str, bool]]:
    lines = []
    for line in (HERE / "handwritten" / f"{label}.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        urgent = line.startswith("!")
        lines.append((line[1:].strip() if urgent else line, urgent))
    return lines


def _hand_split(text: str) -> str:
    if text in PINNED_TRAIN:
        return "train"
    bucket = zlib.crc32(("hand\x00" + text).encode()) % 10
    return "valid" if bucket < 2 else "test" if bucket < 4 else "train"


def build() -> dict[str, list[dict]]:
    rng = random.Random(SEED)
    assignment = _family_splits(rng)
    splits: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for label in LABELS:
        by_split = defaultdict(list)
        for (lab, index), split in assignment.items():
            if lab == label:
                by_split[split].append(index)
        for split, indices in by_split.items():
            total = TRAIN_PER_LABEL if split == "train" else HELDOUT_PER_LABEL
            per_family = -(-total // len(indices))
            for index in sorted(indices):
                splits[split] += _generate_family(label, index, split, per_family, random.Random(f"{SEED}:{label}:{index}"))
        hand_rng = random.Random(f"{SEED}:hand:{label}")
        for text, urgent in _handwritten(label):
            split = _hand_split(text)
            # src names the line, so its noisy copies stay in one cross-validation group
            item = {"text": text, "label": label, "urgent": urgent,
                    "src": f"h:{label}:{zlib.crc32(text.encode()) % 100000:05d}"}
            splits[split].append(item)
            if split == "train":
                # train also sees noisy copies of each hand-written line (they are the most
                # realistic messages we have, so they weigh more than one template sample)
                seen_copies = {normalize(text)}
                for _ in range(HAND_COPIES):
                    noisy = Noise(False).apply(text, hand_rng, _is_english(text))
                    if normalize(noisy) not in seen_copies:
                        seen_copies.add(normalize(noisy))
                        splits[split].append({**item, "text": noisy})
    train_keys = {normalize(item["text"]) for item in splits["train"]}
    for split in ("valid", "test"):
        seen: set[str] = set()
        kept = []
        for item in splits[split]:
            key = normalize(item["text"])
            if key in train_keys or key in seen:
                continue
            seen.add(key)
            kept.append(item)
        splits[split] = kept
    # train: drop exact duplicates (same normalised text and label)
    seen_train: set[tuple[str, str]] = set()
    kept = []
    for item in splits["train"]:
        key = (normalize(item["text"]), item["label"])
        if key not in seen_train:
            seen_train.add(key)
            kept.append(item)
    splits["train"] = kept
    rng.shuffle(splits["train"])
    return splits


def main() -> None:
    splits = build()
    for split, items in splits.items():
        with open(HERE / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            for item in items:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
        counts = Counter(item["label"] for item in items)
        urgent = sum(item["urgent"] for item in items)
        print(f"{split}: {len(items)} messages, {urgent} urgent; " +
              ", ".join(f"{label} {counts[label]}" for label in LABELS))


if __name__ == "__main__":
    main()
