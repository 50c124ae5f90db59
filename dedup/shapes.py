"""Chinese characters that are easily mistaken for one another by eye (形近字).

A handwritten form, a scanned register or a hurried clerk turns 吴 into 昊 or 宇 into 字 — a slip of
the eye, not of the ear, so pinyin does not see it. Each group below holds characters that are read
differently but look alike; characters in one group fold to the group's first character, and two
names equal after folding (but not as written) compare at the name comparison's ``shape`` level.

Groups of homophones (杨/扬, 清/请/情) are left out: the pinyin comparison already catches them.

Example:
    >>> import pandas as pd
    >>> shape_key(pd.Series(["李宇", "李字", "李明"])).tolist()
    ['李宇', '李宇', '李明']
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from staging._arrow import to_series

__all__ = ["SHAPE_GROUPS", "shape_key"]

#: Each string is one group of look-alike characters with different readings.
SHAPE_GROUPS: tuple[str, ...] = (
    "己已巳",
    "未末",
    "戊戌戍",
    "日曰",
    "王玉主",
    "土士",
    "人入八",
    "大太犬",
    "千干于",
    "田由甲申",
    "贝见",
    "折拆析",
    "拔拨",
    "崇祟",
    "钧钓",
    "沽沾",
    "冶治",
    "浙淅",
    "晴睛",
    "苑宛",
    "徽微",
    "茶荼",
    "阀阁",
    "刀力",
    "本木",
    "石右",
    "免兔",
    "鸟乌",
    "白自",
    "天夭",
    "洒酒",
    "宇字",
    "彬杉",
    "淼森",
    "昊吴",
    "军车",
    "兵乒",
    "春舂",
)

_FOLD = str.maketrans({char: group[0] for group in SHAPE_GROUPS for char in group[1:]})


def shape_key(names: pd.Series) -> pd.Series:
    """Names with every look-alike character folded to its group's first character; null stays null.

    Folded once per distinct name.
    """
    codes, distinct = pd.factorize(names, use_na_sentinel=True)
    # Null (code -1) takes the value appended for it.
    folded = pa.array([*(value.translate(_FOLD) for value in distinct), None], type=pa.large_string())
    return to_series(folded.take(pa.array(np.where(codes < 0, len(distinct), codes))), names.index)
