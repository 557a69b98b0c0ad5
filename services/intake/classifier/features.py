"""Text normalisation and character n-grams: the ONE featuriser used by training and inference.

Pure Python on purpose: the intake worker must not import scikit-learn or
scipy (memory), so the exported model is applied to exactly these features by
`model.py`, and training hands this same function to scikit-learn as its
analyzer. Change anything here and the model must be retrained (the artefact
records `FEATURES_VERSION` and refuses to load on a mismatch).
"""

from __future__ import annotations

import re
import unicodedata

FEATURES_VERSION = 1

# Longer messages are classified on their beginning: residents state the
# problem first, and this bounds the cost of a 4,096-character message.
MAX_CHARS = 400

# Traditional → simplified for the characters residents actually use in these
# requests (a phone set to traditional input, an older relative's habit).
_TRAD_PAIRS = (
    "樓楼燈灯電电氣气壞坏門门鎖锁們们來来這这個个說说話话請请問问麼么難难題题醫医險险證证書书"
    "換换綠绿議议會会員员車车場场處处邊边裡里裏里對对開开關关發发錢钱補补貼贴養养師师體体時时"
    "間间學学課课講讲習习報报義义務务願愿幫帮寫写讀读錯错區区號号單单認认辦办過过還还給给親亲"
    "聽听見见現现頭头鄰邻雞鸡貓猫衛卫節节長长紅红黃黄廣广漲涨熱热陽阳臺台檯台爛烂滅灭蟲虫髒脏"
    "亂乱煙烟著着燒烧暈晕傷伤竊窃騙骗詐诈鬧闹兒儿爺爷媽妈婦妇贈赠歡欢謝谢嗎吗試试測测資资闆板"
    "權权離离遺遗產产約约續续訪访預预積积麵面飯饭飲饮壓压濕湿滲渗頂顶屬属簽签線线劃划輛辆園园"
    "築筑護护衝冲擊击憂忧鬱郁導导術术圖图館馆買买賣卖幹干沒没為为與与東东從从紙纸響响聲声殺杀"
    "網网絡络級级組组織织編编藝艺劇剧戲戏畫画筆笔歲岁齡龄殘残貧贫領领療疗費费繳缴銀银賬账戶户"
    "遷迁廁厕溝沟災灾禍祸偵侦槍枪漢汉鐘钟點点幾几啓启啟启總总搶抢鬥斗氣气風风險险電电梯梯"
)
_TRAD = str.maketrans(_TRAD_PAIRS[0::2], _TRAD_PAIRS[1::2])

# Everything that is not a word character or an emoji/pictograph separates tokens.
_SEPARATORS = re.compile(r"[^\w\u2600-\u27bf\U0001F000-\U0001FAFF]+|_+")
_DIGITS = re.compile(r"\d+")
_LATIN = re.compile(r"[a-z]{2,}")


def normalize(text: str) -> str:
    """NFKC (full-width → half-width), lower case, traditional → simplified,
    punctuation and spaces → one space. Rules match on this text."""
    text = unicodedata.normalize("NFKC", text[:MAX_CHARS]).lower().translate(_TRAD)
    return _SEPARATORS.sub(" ", text).strip()


def ngrams(norm: str) -> list[str]:
    """Character unigrams and bigrams of each token padded with a space (so the
    start and end of a message or word are features); Latin tokens (English,
    pinyin) also give trigrams and whole words ("w:fridge").

    Bigrams rather than longer n-grams: with templated training data, longer
    n-grams memorise templates; family-grouped cross-validation on train
    preferred 1–2 (docs/intake.md).
    """
    out: list[str] = []
    append = out.append
    for token in norm.split():
        padded = f" {token} "
        size = len(padded)
        for i in range(1, size - 1):
            append(padded[i])
        for i in range(size - 1):
            append(padded[i : i + 2])
        if token.isascii():
            for i in range(size - 2):
                append(padded[i : i + 3])
            for word in _LATIN.findall(token):
                append("w:" + word)
    return out


def features(text: str) -> list[str]:
    """The analyzer: raw text → list of features (with repeats; counts matter).
    Every run of digits becomes "0" (room numbers and dates carry no category)."""
    return ngrams(_DIGITS.sub("0", normalize(text)))
