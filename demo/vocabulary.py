"""Word lists the demo district is built from: places, surnames, given names, typing variants.

Everything here is data. Weights are relative frequencies, not probabilities; the generator
normalises them. Surname shares follow the published Chinese surname rankings (王, 李, 张 each
around 7 %, then a long tail); given names are split by sex and by birth era, because a 1950s
秀英 and a 2010s 梓涵 are as telling as a birth date. The heads of the given-name lists are
deliberately heavy so that common full names (王伟, 张丽, 李娜) recur: the 同名同姓 namesakes
identity resolution must keep apart.

All characters are GBK-encodable, since the health department's export is a GBK CSV.
"""

from __future__ import annotations

__all__ = [
    "AREA_CODES_ELSEWHERE",
    "AREA_CODE_LOCAL",
    "AREA_CODES_MINORITY",
    "COMMUNITIES",
    "DISTRICT",
    "DOT_VARIANTS",
    "DOT_VARIANTS_GBK",
    "GIVEN_FEMALE_FIRST",
    "GIVEN_FEMALE_SECOND",
    "GIVEN_HEADS",
    "GIVEN_MALE_FIRST",
    "GIVEN_MALE_SECOND",
    "HOMOPHONES",
    "LOOKALIKES",
    "MINORITY_FATHER",
    "MINORITY_FEMALE",
    "MINORITY_MALE",
    "PHONE_PREFIXES",
    "STREETS",
    "SURNAMES",
]

DISTRICT = "示范区"
"""The fictional district every address starts with."""

AREA_CODE_LOCAL = "330106"
"""Area code (first six digits of the resident ID) of people first registered in the district."""

AREA_CODES_ELSEWHERE: tuple[tuple[str, float], ...] = (
    ("330102", 3.0),
    ("330105", 3.0),
    ("330108", 2.0),
    ("330381", 2.0),
    ("340104", 2.0),
    ("320102", 1.5),
    ("360102", 1.5),
    ("410102", 1.5),
    ("420102", 1.5),
    ("430102", 1.5),
    ("510104", 1.5),
    ("350102", 1.0),
    ("370102", 1.0),
    ("130102", 1.0),
    ("610102", 1.0),
    ("530102", 1.0),
)
"""Area codes of residents who moved in from elsewhere, with relative weights."""

AREA_CODES_MINORITY: tuple[str, ...] = ("650102", "650103", "650104", "650105", "652801")
"""Area codes (Xinjiang) for households whose members carry transliterated names."""

STREETS: tuple[str, ...] = ("西溪街道", "东湖街道", "南山街道", "北塘街道", "清河街道", "文华街道")
"""The district's streets (街道)."""

COMMUNITIES: tuple[tuple[str, ...], ...] = (
    ("翠苑社区", "桂花社区", "金桥社区", "丰收社区", "学院社区"),
    ("和睦社区", "春晖社区", "银杏社区", "紫荆社区", "新华社区"),
    ("朝阳社区", "石桥社区", "星光社区", "枫林社区", "兰亭社区"),
    ("湖畔社区", "长乐社区", "安居社区", "玉泉社区", "竹园社区"),
    ("东风社区", "友谊社区", "青石社区", "月塘社区", "锦绣社区"),
    ("荷花社区", "幸福社区", "滨江社区", "梧桐社区", "明德社区"),
)
"""Communities (社区) of each street, in the order of :data:`STREETS`."""

SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.12), ("李", 7.00), ("张", 6.74), ("刘", 5.10), ("陈", 4.61), ("杨", 3.22), ("黄", 2.45),
    ("赵", 2.19), ("吴", 2.00), ("周", 1.95), ("徐", 1.45), ("孙", 1.38), ("马", 1.29), ("朱", 1.28),
    ("胡", 1.16), ("郭", 1.06), ("何", 1.03), ("林", 0.97), ("高", 0.96), ("罗", 0.86), ("郑", 0.83),
    ("梁", 0.80), ("谢", 0.72), ("宋", 0.62), ("唐", 0.61), ("许", 0.59), ("韩", 0.57), ("冯", 0.56),
    ("邓", 0.55), ("曹", 0.54), ("彭", 0.52), ("曾", 0.51), ("肖", 0.49), ("田", 0.48), ("董", 0.47),
    ("袁", 0.46), ("潘", 0.45), ("于", 0.44), ("蒋", 0.43), ("蔡", 0.42), ("余", 0.41), ("杜", 0.40),
    ("叶", 0.39), ("程", 0.38), ("苏", 0.37), ("魏", 0.36), ("吕", 0.35), ("丁", 0.34), ("任", 0.33),
    ("沈", 0.32), ("姚", 0.31), ("卢", 0.30), ("姜", 0.29), ("崔", 0.28), ("钟", 0.27), ("谭", 0.26),
    ("陆", 0.25), ("汪", 0.24), ("范", 0.23), ("金", 0.22), ("石", 0.21), ("廖", 0.20), ("贾", 0.19),
    ("夏", 0.18), ("韦", 0.17), ("付", 0.17), ("方", 0.16), ("白", 0.16), ("邹", 0.15), ("孟", 0.15),
    ("熊", 0.14), ("秦", 0.14), ("邱", 0.13), ("江", 0.13), ("尹", 0.12), ("薛", 0.12), ("闫", 0.11),
    ("段", 0.11), ("雷", 0.10), ("侯", 0.10), ("龙", 0.10), ("史", 0.09), ("陶", 0.09), ("黎", 0.09),
    ("贺", 0.08), ("顾", 0.08), ("毛", 0.08), ("郝", 0.08), ("龚", 0.07), ("邵", 0.07), ("万", 0.07),
    ("钱", 0.07), ("严", 0.06), ("覃", 0.06), ("武", 0.06), ("戴", 0.06), ("莫", 0.05), ("孔", 0.05),
    ("向", 0.05), ("汤", 0.05), ("常", 0.05), ("温", 0.04), ("康", 0.04), ("施", 0.04), ("文", 0.04),
    ("牛", 0.04), ("樊", 0.04), ("葛", 0.04), ("邢", 0.04), ("安", 0.03), ("齐", 0.03), ("易", 0.03),
    ("乔", 0.03), ("伍", 0.03), ("庞", 0.03), ("颜", 0.03), ("倪", 0.03), ("庄", 0.03), ("聂", 0.03),
    ("章", 0.03), ("鲁", 0.03), ("岳", 0.03), ("翟", 0.02), ("殷", 0.02), ("詹", 0.02), ("申", 0.02),
    ("耿", 0.02), ("关", 0.02), ("兰", 0.02), ("焦", 0.02), ("俞", 0.02), ("左", 0.02), ("柳", 0.02),
    ("甘", 0.02), ("祝", 0.02), ("包", 0.02), ("宁", 0.02), ("尚", 0.02), ("符", 0.02), ("舒", 0.02),
    ("阮", 0.02), ("柯", 0.02), ("纪", 0.02), ("梅", 0.02), ("童", 0.02), ("凌", 0.02), ("毕", 0.02),
    ("单", 0.02), ("解", 0.03), ("查", 0.02), ("仇", 0.01), ("区", 0.01), ("朴", 0.02),
    ("欧阳", 0.02), ("司马", 0.005), ("上官", 0.005), ("诸葛", 0.005), ("东方", 0.004), ("皇甫", 0.004),
    *((surname, 0.05) for surname in "艾敖柏鲍卜岑柴车褚丛刁窦鄂房费封伏扶盖宫巩谷桂海杭衡洪花华滑怀惠霍吉计季冀"
      "简靳荆井景居鞠瞿寇匡邝赖蓝郎劳冷厉利连廉练蔺娄芦路栾骆麻满茅蒙米苗闵明缪牟穆那年钮农欧裴皮平蒲濮浦戚祁"
      "强谯屈全饶冉荣容芮桑沙山商佘盛师时寿帅水司松宿索邰滕涂屠危卫闻翁巫邬奚习席冼项萧辛修胥宣荀阎晏燕仰伊"
      "应雍尤游鱼虞宇禹郁喻元云臧湛甄支仲诸竺卓宗祖"),
)
"""Han surnames with relative frequency (percent of the population), then a long tail of rarer ones;
单 解 曾 查 仇 区 朴 have surname readings that differ from the everyday one (shan, xie, zeng, zha,
qiu, ou, piao)."""

GIVEN_HEADS: dict[tuple[str, str], tuple[str, ...]] = {
    ("M", "old"): (
        "建国", "建华", "国庆", "国强", "德明", "志强", "文华", "玉林", "福生", "金生", "永福", "长青",
        "振华", "国华", "宝山", "明", "华", "军", "平", "强", "伟", "勇", "刚", "林", "忠",
    ),
    ("M", "mid"): (
        "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
        "波", "峰", "建军", "志刚", "海涛", "晓东", "晓明", "俊", "健", "亮", "东", "雷", "兵", "宁",
        "志明", "文杰",
    ),
    ("M", "young"): (
        "子轩", "浩宇", "浩然", "宇轩", "梓豪", "俊杰", "子豪", "浩", "宇", "杰", "鑫", "轩", "一鸣",
        "博文", "天佑", "明轩", "宇航", "睿", "晨", "豪", "旭", "帆", "凯", "博", "文博", "皓轩", "沐辰",
        "奕辰",
    ),
    ("F", "old"): (
        "秀英", "桂英", "秀兰", "玉兰", "桂兰", "秀珍", "凤英", "玉珍", "玉英", "兰英", "桂芳", "淑珍",
        "素珍", "桂珍", "英", "珍", "芳", "华", "梅", "兰",
    ),
    ("F", "mid"): (
        "丽", "芳", "娜", "敏", "静", "艳", "娟", "霞", "燕", "玲", "红", "丹", "萍", "莉", "梅", "晶",
        "颖", "慧", "洁", "琳", "丽娟", "晓燕", "丽华", "海燕", "红梅", "晓红", "雪梅", "春梅", "小红",
        "晓丽",
    ),
    ("F", "young"): (
        "子涵", "梓涵", "欣怡", "诗涵", "雨涵", "一诺", "婷", "雪", "倩", "琪", "欣", "悦", "怡", "涵",
        "可馨", "雨桐", "思涵", "佳怡", "若曦", "语桐", "紫涵", "梦琪", "雨萱", "欣妍", "佳琪", "思雨",
        "诗琪", "梓萱", "依诺",
    ),
}
"""The most common whole given names per (sex, birth era); era: old < 1960 <= mid < 1990 <= young.
Drawn with Zipf-like weights (earlier = more common)."""

GIVEN_MALE_FIRST = "志建国文海晓小俊子浩宇明天家嘉永新立振思博泽一成光春耀世德"
GIVEN_MALE_SECOND = "伟强明华军杰涛斌峰辉平林刚勇东龙鹏飞宇轩豪然航睿晨阳凯洋毅彬铭昊博磊成"
GIVEN_FEMALE_FIRST = "晓小丽秀玉春美雅佳欣思雨梦紫诗婉静慧海红雪文月若可语梓一淑桂"
GIVEN_FEMALE_SECOND = "丽芳娟敏静燕红霞玲萍梅琳婷雪倩颖怡涵萱琪彤悦妍璐洁薇瑶菲兰华莉晶"
"""Characters combined into the long tail of two-character given names (first + second)."""

MINORITY_MALE: tuple[str, ...] = (
    "艾力", "买买提", "阿不都", "吐尔逊", "艾山", "依明", "努尔", "亚森", "热合曼", "肉孜", "艾尔肯", "迪力夏提",
)
MINORITY_FEMALE: tuple[str, ...] = (
    "阿依古丽", "古丽米拉", "热依拉", "迪丽努尔", "帕提古丽", "努尔古丽", "阿依努尔", "米热古丽", "古丽娜尔",
    "迪丽拜尔",
)
MINORITY_FATHER: tuple[str, ...] = (
    "买买提", "吐尔逊", "艾山", "依明", "阿不都热依木", "玉素甫", "库尔班", "阿吉", "司马义", "托合提",
    "吾守尔", "阿不力孜",
)
"""Parts of transliterated (Uyghur) names, written ``own name·father's name``."""

DOT_VARIANTS_GBK: tuple[str, ...] = (".", "．")
DOT_VARIANTS: tuple[str, ...] = ("•", "・", ".", "．")
"""What clerks type instead of the middle dot ``·``; the GBK export can only hold the first set."""

LOOKALIKES: dict[str, str] = {
    "吴": "昊", "昊": "吴", "宇": "字", "王": "玉", "玉": "王", "田": "由", "申": "甲", "天": "夭",
    "军": "车", "春": "舂", "木": "本", "石": "右", "白": "自", "力": "刀", "于": "干", "彬": "杉",
    "森": "淼", "苑": "宛", "明": "朋", "晨": "晟",
}
"""A character and one it is misread as on a handwritten form (形近字): read differently, so pinyin
does not see the slip."""

HOMOPHONES: dict[str, str] = {
    "晓": "小", "小": "晓", "伟": "玮", "玮": "伟", "丽": "莉", "莉": "丽", "明": "铭", "铭": "明",
    "静": "婧", "军": "君", "杰": "洁", "洁": "杰", "燕": "艳", "艳": "燕", "玲": "琳", "琳": "玲",
    "红": "虹", "英": "瑛", "华": "桦", "峰": "锋", "斌": "彬", "彬": "斌", "涛": "韬", "刚": "钢",
    "萍": "平", "平": "萍", "慧": "惠", "梓": "子", "子": "梓", "涵": "晗", "轩": "萱", "萱": "轩",
    "宇": "雨", "雨": "语", "欣": "馨", "婷": "亭", "佳": "嘉", "嘉": "佳", "志": "智", "建": "健",
    "兰": "岚", "霞": "侠", "娟": "鹃", "勇": "永", "辉": "晖", "鹏": "朋", "东": "冬", "春": "纯",
    "玉": "钰", "珍": "贞", "梅": "玫", "颖": "莹", "琪": "淇", "怡": "宜", "倩": "茜", "睿": "瑞",
    "浩": "昊", "晨": "辰", "阳": "扬", "敏": "民", "芳": "方", "凤": "风",
}
"""Given-name characters and a same-sounding character clerks type for them (晓/小, 伟/玮 ...)."""

PHONE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153",
    "155", "156", "157", "158", "159", "166", "173", "177", "180", "181", "182", "183", "186", "187",
    "188", "189", "191", "198", "199",
)
"""Mobile number prefixes (three digits of eleven)."""
