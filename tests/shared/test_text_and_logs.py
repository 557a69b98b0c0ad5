import json
import logging

from shared.domain.text import clean_text, has_words
from shared.logs import JsonFormatter


def test_clean_text_drops_invisible_and_control_characters():
    assert clean_text("\u200b\u200d  灯坏了\u202e\x00 ") == "灯坏了"
    assert clean_text(None) == ""
    assert clean_text("第一行\n第二行") == "第一行\n第二行"


def test_words_are_needed():
    assert has_words("灯坏了")
    assert has_words("light broken")
    assert not has_words("😀😀😀")
    assert not has_words("？？？!!!")


def test_json_log_lines_carry_extra_fields():
    record = logging.LogRecord("linju.test", logging.INFO, __file__, 1, "request stored", (), None)
    record.request_id = 7
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "request stored" and line["request_id"] == 7 and line["level"] == "info"
