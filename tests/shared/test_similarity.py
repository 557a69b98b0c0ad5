from shared.domain.similarity import similarity


def test_same_problem_in_other_words_is_similar():
    assert similarity("3单元楼道灯坏了 晚上看不见", "三单元楼道的灯坏了好几天") >= 0.4
    assert similarity("停水了", "今天又停水了") >= 0.4


def test_different_problems_are_not():
    assert similarity("楼道灯坏了", "小区垃圾没人清") < 0.1
    assert similarity("", "楼道灯坏了") == 0.0
    assert similarity("😀😀", "😀😀") == 0.0
