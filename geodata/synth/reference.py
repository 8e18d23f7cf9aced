"""Reference figures, layout constants and name pools of the synthetic street.

Proportions follow the 象山社区 (绥芬河) community report; names are common surnames, given-name
characters and place words, so nothing here describes real people."""

from __future__ import annotations

# --- reference proportions: 象山社区, 绥芬河 (per community) -------------------------------------
REF_HOUSEHOLDS = 3275
REF_RESIDENTS = 9325
REF_FLOATING_HOUSEHOLDS = 887
REF_PARTY_DIRECT = 47
REF_PARTY_IN_SERVICE = 81
REF_PARTY_FLOATING = 6  # "some": not in the report, plausible
REF_PARTY_RETIRED = 28  # "some": not in the report, plausible
REF_VOLUNTEERS = 296
FLAG_RATES = {  # share of households
    "low_income": 0.02,
    "elderly_alone": 0.06,
    "disabled": 0.03,
    "extreme_poverty": 0.005,
}
RENTAL_GIVEN_FLOATING = 0.45
RENTAL_GIVEN_SETTLED = 0.04  # overall ≈ 0.27·0.45 + 0.73·0.04 ≈ 15 %

VOLUNTEER_TEAMS = (  # kind, name suffix, share of the community's volunteers
    ("party", "党员志愿服务队", 0.27),
    ("elderly", "老年志愿服务队", 0.24),
    ("women", "巾帼志愿服务队", 0.20),
    ("housekeeping", "家政志愿服务队", 0.12),
    ("public_security", "治安志愿服务队", 0.17),
)

INCIDENT_CATEGORIES = (  # code, share, mean days to close, description templates ({loc})
    (
        "dispute",
        0.12,
        6.0,
        (
            "{loc}邻里因噪音发生纠纷",
            "{loc}楼上漏水引发邻里矛盾",
            "{loc}物业费纠纷需调解",
            "{loc}家庭矛盾需上门调解",
            "{loc}停车位归属争议",
        ),
    ),
    (
        "public_order",
        0.08,
        3.0,
        (
            "{loc}发现可疑人员徘徊",
            "{loc}电动车被盗",
            "{loc}夜间聚众喧哗扰民",
            "{loc}单元门禁损坏存在治安隐患",
        ),
    ),
    (
        "safety",
        0.10,
        2.0,
        (
            "{loc}楼道内电动车违规充电",
            "{loc}消防通道被占用",
            "{loc}燃气管道老化有异味",
            "{loc}外墙瓷砖有脱落风险",
            "{loc}楼道堆放杂物",
        ),
    ),
    (
        "sanitation",
        0.25,
        1.5,
        (
            "{loc}垃圾未及时清运",
            "{loc}绿化带积存垃圾",
            "{loc}下水道堵塞有异味",
            "{loc}小广告乱张贴",
            "{loc}宠物粪便未清理",
        ),
    ),
    (
        "municipal",
        0.15,
        5.0,
        (
            "{loc}路灯不亮",
            "{loc}井盖破损",
            "{loc}道路坑洼积水",
            "{loc}健身器材损坏",
            "{loc}雨水管堵塞",
        ),
    ),
    (
        "livelihood",
        0.18,
        8.0,
        (
            "{loc}老人申请居家养老服务",
            "{loc}居民咨询低保申请",
            "{loc}加装电梯意见征集",
            "{loc}居民反映供暖不足",
            "{loc}独居老人需定期探访",
        ),
    ),
    (
        "floating_population",
        0.07,
        4.0,
        ("{loc}新增租户未登记", "{loc}群租房人员信息待核实", "{loc}流动人口居住证办理咨询"),
    ),
    ("other", 0.05, 3.0, ("{loc}居民咨询社区活动", "{loc}流浪动物出没", "{loc}其他需协调事项")),
)
REPORTER_KINDS = (("grid_worker", 0.40), ("resident", 0.35), ("public", 0.15), ("leader", 0.10))
INCIDENT_TZ = "Asia/Shanghai"

# --- layout constants (metres) --------------------------------------------------------------
BLOCK_SIDE = 200.0  # typical road-block side
ROAD_HALF_WIDTH = 10.0  # estate polygon = block inset by this
ESTATE_SETBACK = 6.0  # buildings keep this far inside the estate (plus ~4 m for slant)
EDGE_MARGIN = 2.0  # inside the packing rectangle, room for a slight rotation
SLANT_ALLOWANCE = 4.0  # the packing rectangle also stays this far from the slanted block edge
MAX_ROTATION_DEG = 2.5
WIDTH_VARIATION = 0.15  # road spacing varies ±15 % around BLOCK_SIDE
JITTER = 0.05  # lattice vertices move up to 5 % of a block side
SMALLEST_BLOCK = 1 - WIDTH_VARIATION - 2 * JITTER - 0.02  # smallest block side / mean side
MAX_VACANCY = 0.10
TOWER_MAX_CAPACITY = 4 * 2 * 33  # 33 levels × 2 units × 4 dwellings a floor
TOWER_MAX_LENGTH = 33.0
TOWER_DEPTH = 22.0

# --- names ------------------------------------------------------------------------------------
SURNAMES = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤"
)
MALE_CHARS = tuple(
    "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆旭宁龙林阳建国志文海东峰亮成博晨睿轩泽然嘉"
)
FEMALE_CHARS = tuple(
    "芳娜敏静丽艳娟霞秀英慧巧美玲萍红燕婷雪琳晶洁倩颖欣怡佳雨梦思诗涵萱悦彤瑶婉兰凤梅琴月"
)
PLACE_NAMES = (
    "翠湖",
    "象山",
    "梧桐",
    "玉泉",
    "清溪",
    "锦江",
    "长青",
    "龙蟠",
    "紫荆",
    "丹凤",
    "桃园",
    "柳营",
    "松涛",
    "兰苑",
    "枫林",
    "樱花",
    "银河",
    "金桥",
    "新民",
    "和平",
    "朝阳",
    "东风",
    "红旗",
    "光华",
    "友谊",
    "振兴",
    "幸福",
    "团结",
    "育才",
    "文昌",
    "凤凰",
    "莲花",
    "北园",
    "南湖",
    "东湖",
    "西山",
    "月牙",
    "青石",
    "白鹭",
    "秋实",
    "春晖",
    "杏林",
    "竹园",
    "荷塘",
    "明珠",
    "天河",
    "瑞金",
    "百合",
    "香樟",
    "石榴",
    "云锦",
    "景明",
    "安康",
    "康宁",
    "泰和",
    "永安",
    "新华",
    "建宁",
    "汇文",
    "清凉",
)
ESTATE_PREFIXES = (
    "翠苑",
    "金陵",
    "梧桐",
    "锦绣",
    "银杏",
    "紫金",
    "玉兰",
    "碧水",
    "阳光",
    "幸福",
    "东方",
    "春江",
    "翰林",
    "桂花",
    "香榭",
    "御景",
    "天润",
    "明珠",
    "枫林",
    "丽景",
    "瑞祥",
    "盛世",
    "康乐",
    "福润",
    "嘉和",
    "新城",
    "怡景",
    "龙湾",
    "凤凰",
    "青竹",
    "南湖",
    "北苑",
    "西园",
    "东苑",
    "长江",
    "秦淮",
    "钟山",
    "石城",
    "白鹭",
    "莫愁",
    "朝阳",
    "建宁",
    "清风",
    "明月",
    "海棠",
    "芙蓉",
    "蔷薇",
    "丁香",
    "雅颂",
    "书香",
    "和煦",
    "锦华",
    "华府",
    "润泽",
    "恒盛",
    "万象",
    "世纪",
    "时代",
    "滨江",
    "天成",
)
ESTATE_SUFFIXES = (
    "小区",
    "花园",
    "雅居",
    "家园",
    "新村",
    "苑",
    "公寓",
    "名邸",
    "嘉园",
    "佳苑",
    "山庄",
    "里",
    "公馆",
    "新寓",
    "华庭",
    "府",
)
ROAD_NAMES = (
    "青年",
    "建国",
    "中山",
    "解放",
    "人民",
    "文化",
    "长江",
    "黄河",
    "民生",
    "胜利",
    "光明",
    "学府",
    "科苑",
    "珠江",
    "汉中",
    "龙江",
    "太平",
    "成贤",
    "丹凤",
    "进香",
    "北安",
    "长白",
    "兴华",
    "延龄",
    "同仁",
    "安仁",
    "富贵",
    "吉庆",
    "仁寿",
    "公园",
    "花园",
    "樱驼",
    "清溪",
    "华侨",
)
CITY_NAMES = {
    "1101": "北京市",
    "3101": "上海市",
    "3201": "南京市",
    "3301": "杭州市",
    "4401": "广州市",
    "4403": "深圳市",
    "5101": "成都市",
    "2310": "牡丹江市",
}
DISTRICT_NAMES = {
    "320102": "玄武区",
    "320104": "秦淮区",
    "320105": "建邺区",
    "320106": "鼓楼区",
    "320111": "浦口区",
    "320113": "栖霞区",
    "320114": "雨花台区",
    "320115": "江宁区",
    "110105": "朝阳区",
    "110108": "海淀区",
    "231081": "绥芬河市",
}
CN_DIGITS = "零一二三四五六七八九十"

# block kinds
RESIDENTIAL, CIVIC, SCHOOL, MARKET, PARK = 0, 1, 2, 3, 4
SPECIAL_BLOCKS = (CIVIC, SCHOOL, MARKET, PARK)
