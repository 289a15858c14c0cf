"""Fixed vocabularies of the synthetic Mashan county: names, places, employers, categories.

Everything here is invented except the county's real frame (code 450124, its townships, the
county seat 白山镇, the Zhuang-region surnames). Village, street and employer names are plausible
inventions; none of them contains 白山镇, so an address mentions the county seat only when the
generator means it to.
"""

from __future__ import annotations

COUNTY = "马山县"
COUNTY_CODE = 450124
COUNTY_SEAT = "白山镇"

# Surname and relative frequency; Mashan is mostly Zhuang, where 韦 蓝 黄 覃 dominate.
SURNAMES: tuple[tuple[str, float], ...] = (
    ("韦", 14), ("黄", 10), ("蓝", 8), ("覃", 7), ("陆", 6), ("李", 5), ("蒙", 5),
    ("潘", 4), ("梁", 3), ("罗", 3), ("农", 3), ("陈", 3), ("莫", 3), ("卢", 2),
    ("周", 2), ("唐", 2), ("何", 2), ("杨", 2), ("刘", 2), ("廖", 1.5), ("谢", 1),
    ("甘", 1), ("马", 1), ("邓", 1), ("班", 1), ("苏", 1), ("赵", 1), ("王", 1),
    ("吴", 1), ("曾", 1), ("宁", 1), ("方", 1), ("黎", 1),
)  # fmt: skip

# Given-name characters common in the region, by sex; some are shared.
GIVEN_MALE = (
    "春秋明志强军勇海福贵荣昌光文武德忠新宁安康生成连远朝兴发才胜利金银华国建平学林东伟"
    "俊壮振开庆日永有元玉家桂松清良宝峰坤万正进全大恩善达兵天"
)
GIVEN_FEMALE = (
    "春秋花兰凤梅英丽芳秀玉美艳红燕妹娟姣娇桂金银月霞莲琴香萍珍连翠菊玲婷雪云丹彩荣妮慧晴"
)

# Extra characters that clerks type for a name character with the same reading; together with
# the pools above they form the homophone groups (same `pypinyin.lazy_pinyin` reading).
HOMOPHONE_EXTRA = (
    "椿纯淳铭鸣名智芝之君均钧泳涌凯富复辅付归规容蓉融常长广弘洪宏鸿虹雯闻五伍舞得心欣鑫馨"
    "辛屏坪宾彬斌薛琳霖临麟冬栋维卫玮威薇骏峻珺庄珍贞震青卿擎咏友佑元园源媛圆钰毓育宇雨"
    "语羽佳嘉加颂宋亮粱保葆丰风枫昆婉宛政征锦晋瑾泉权珊山邱球求桦岚澜玫媚莹莺樱鹰莉力立"
    "荔方芬妍彦岩鹃蛟骄悦岳侠廉联芹勤秦湘祥翔相桢萃桔铃龄凌灵亭庭廷芸耘运单财惠会卉辉晖"
    "魏皇凰煌理礼路鹿禄芦炉攀孟梦洛骆侬浓晨辰臣沉州洲舟堂棠塘和河禾星幸杏邢流柳留郭果田"
    "添甜尼倪凝柠按岸鞍抗亢辽聊寥健剑坚鉴中钟终仲城诚程承增超潮扬阳洋旺望汪斑般板干柑修"
    "休绣素肃漠墨末默谭潭协斜照召昭兆登灯音印因寅妈玛麻"
)

# Genuine look-alike characters (形近字) for characters that occur in the pools.
LOOKALIKES: dict[str, str] = {
    "李": "季", "玉": "王", "王": "玉", "秀": "秃", "春": "舂", "日": "曰", "大": "太",
    "凤": "风", "兵": "丘", "天": "夭", "晴": "睛", "未": "末", "己": "已", "土": "士",
}  # fmt: skip

# Townships of Mashan with their villages (villages invented), county seat first.
TOWNSHIPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("白山镇", ("合群村", "新汉村", "大同村", "兴文村", "古棠村", "那汉村", "伏台村", "弄拉村")),
    ("百龙滩镇", ("龙滩村", "百灵村", "渌牙村", "东隆村", "巴造村", "六桥村")),
    ("林圩镇", ("林圩村", "新坡村", "古桥村", "那桐村", "福凤村", "六朝村", "乔老村", "板岸村")),
    ("古零镇", ("古零村", "羊山村", "小都百村", "弄春村", "乔岳村", "达美村")),
    ("金钗镇", ("金钗村", "双福村", "百达村", "杨圩村", "龙昌村", "六卜村")),
    ("周鹿镇", ("周鹿村", "东升村", "三甲村", "宝运村", "彩琴村", "那毛村")),
    ("永州镇", ("永州村", "龙里村", "红星村", "板劳村", "那料村", "乔旺村")),
    ("乔利乡", ("乔利村", "吉祥村", "弄马村", "平林村", "岭坡村")),
    ("加方乡", ("加方村", "立新村", "龙来村", "巴宁村", "那香村")),
    ("古寨瑶族乡", ("古寨村", "本立村", "琴龙村", "东江村", "加善村")),
    ("里当瑶族乡", ("里当村", "兴隆村", "龙读村", "三龙村", "板六村")),
)
# Relative population of each township (the county seat is the largest).
TOWNSHIP_WEIGHTS = (22, 9, 12, 9, 8, 9, 8, 6, 6, 5, 6)
# Hamlets (屯) used to build rural addresses.
HAMLETS = (
    "那伦屯",
    "弄怀屯",
    "板坡屯",
    "岜独屯",
    "那造屯",
    "古朗屯",
    "六合屯",
    "弄烟屯",
    "下岭屯",
    "上林屯",
)
# Streets of the county seat, and the market street of every other township.
SEAT_STREETS = (
    "民族大道",
    "人民路",
    "兴马大道",
    "红星路",
    "公园路",
    "城东路",
    "迎宾路",
    "平安路",
    "滨江路",
)
ESTATES = ("阳光花园", "金湾小区", "锦绣家园", "龙腾苑", "翠竹小区", "江景豪庭")

# Other Nanning-area region codes (4501xx) for people registered outside the county.
OTHER_REGIONS: tuple[tuple[int, str], ...] = (
    (450102, "南宁市兴宁区"), (450103, "南宁市青秀区"), (450105, "南宁市江南区"),
    (450107, "南宁市西乡塘区"), (450108, "南宁市良庆区"), (450109, "南宁市邕宁区"),
    (450122, "武鸣县"), (450123, "隆安县"), (450125, "上林县"), (450126, "宾阳县"),
    (450127, "横县"),
)  # fmt: skip

# Home region codes of the counties a scenario beyond one county spreads over, in order: Mashan
# first, then the other Nanning counties and districts (4501xx), then Liuzhou's (4502xx) and
# Guilin's (4503xx). Real-looking codes; every county reuses Mashan's townships and villages.
COUNTY_CODES: tuple[int, ...] = (
    450124, 450125, 450126, 450127, 450122, 450123, 450102, 450103, 450105, 450107, 450108,
    450109, 450202, 450203, 450204, 450205, 450221, 450222, 450223, 450224, 450225, 450226,
    450302, 450303, 450304, 450305, 450311, 450321, 450322, 450323,
)  # fmt: skip
# Plate letter (桂A, 桂B, ...) of each county in a scenario beyond one county, so that plates
# stay distinct across counties (one letter holds 34 * 34 * 1000 plates).
PLATE_LETTERS = "ABCDEFGHJKLMNPR"

ETHNICITIES = ("壮族", "汉族", "瑶族")

RELATIONS = (
    "户主", "配偶", "之子", "之女", "之孙子", "之孙女", "之父", "之母", "之儿媳",
)  # fmt: skip

# Payroll employers: county units and, per township, its government, school and clinic.
COUNTY_EMPLOYERS: tuple[tuple[str, str], ...] = (
    ("马山县人民政府办公室", "行政机关"), ("马山县财政局", "行政机关"), ("马山县教育局", "行政机关"),
    ("马山县公安局", "行政机关"), ("马山县民政局", "行政机关"), ("马山县扶贫开发办公室", "行政机关"),
    ("马山县国土资源局", "行政机关"), ("马山县水利局", "行政机关"), ("马山县农业局", "行政机关"),
    ("马山县人民医院", "差额拨款事业单位"), ("马山县中医医院", "差额拨款事业单位"),
    ("马山县妇幼保健院", "差额拨款事业单位"), ("马山县第一中学", "全额拨款事业单位"),
    ("马山县第二中学", "全额拨款事业单位"), ("马山县民族中学", "全额拨款事业单位"),
    ("马山县实验小学", "全额拨款事业单位"), ("马山县职业技术学校", "全额拨款事业单位"),
)  # fmt: skip
TOWNSHIP_EMPLOYERS: tuple[tuple[str, str], ...] = (
    ("人民政府", "行政机关"), ("中心小学", "全额拨款事业单位"), ("卫生院", "差额拨款事业单位"),
    ("初级中学", "全额拨款事业单位"),
)  # fmt: skip
EMPLOYMENT_ACTIVE = "在职"
EMPLOYMENT_OTHER = ("离职", "退休")

# Vehicle types: counted ones are cars, passenger and goods vehicles; the rest are two- and
# three-wheelers, low-speed trucks and tractors, which the audit does not count as cars.
CAR_TYPES = (
    "小型轿车",
    "小型普通客车",
    "小型越野客车",
    "微型普通客车",
    "轻型普通货车",
    "中型普通货车",
)
CAR_TYPE_WEIGHTS = (45, 25, 8, 6, 12, 4)
NON_CAR_TYPES = (
    "普通二轮摩托车",
    "普通三轮摩托车",
    "轻便二轮摩托车",
    "三轮汽车",
    "低速货车",
    "轮式拖拉机",
    "手扶拖拉机",
)
NON_CAR_TYPE_WEIGHTS = (55, 12, 12, 8, 6, 4, 3)
VEHICLE_COUNTED_STATUS = "正常"
VEHICLE_OTHER_STATUS = ("注销", "报废")
PLATE_SYMBOLS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"

# Property types; the audit counts 商品房 and 自建房 in the county seat.
PROPERTY_COUNTED = ("商品房", "自建房")
PROPERTY_ECONOMY = "经济适用房"
PROPERTY_HOMESTEAD = "农村宅基地住房"
PROPERTY_RESETTLEMENT = "易地扶贫搬迁安置房"

# Business entities; cooperatives and closed entities never count.
ENTITY_COUNTED = ("个体工商户", "有限责任公司", "个人独资企业")
ENTITY_COUNTED_WEIGHTS = (80, 14, 6)
ENTITY_COOPERATIVE = "农民专业合作社"
STATUS_ACTIVE = ("存续", "在业")
STATUS_CLOSED = ("注销", "吊销")
SHOP_KINDS = (
    "百货店",
    "日用品店",
    "农资店",
    "饭店",
    "摩托车修理店",
    "五金店",
    "服装店",
    "粉店",
    "养殖场",
    "建材店",
)
COMPANY_KINDS = ("农业开发", "商贸", "建筑工程", "物流", "食品", "旅游开发")
COOP_KINDS = ("种养", "山羊养殖", "旱藕种植", "核桃种植", "黑山猪养殖", "果蔬")

MEDICAL_PROVIDERS = (
    "马山县人民医院", "马山县中医医院", "马山县妇幼保健院", "广西医科大学第一附属医院",
    "南宁市第一人民医院",
)  # fmt: skip
MEDICAL_KINDS = ("门诊", "住院")
