"""Words the demo fleet is made of. Everything here is fictional: company names, shop names, people,
addresses, phone numbers (1380000xxxx) and e-mail addresses (example.com) are made up."""

from __future__ import annotations

PROVIDER_NAME = "云汇通支付 Yunhuitong Pay (demo)"
PASSWORD = "posfleet-demo"  # noqa: S105 (published demo password)

# (code, maker, model, kind, capabilities, SN prefix, firmware versions, weight)
TERMINAL_MODELS: tuple[tuple[str, str, str, str, tuple[str, ...], str, tuple[str, ...], int], ...] = (
    (
        "pax-a920",
        "PAX",
        "A920",
        "smart",
        ("magstripe", "ic_chip", "nfc", "qr_scan", "printer", "cellular", "wifi", "gps"),
        "1853",
        ("PayDroid 8.1 V1.02.05", "PayDroid 8.1 V1.03.01", "PayDroid 10 V2.0.07"),
        22,
    ),
    (
        "pax-s910",
        "PAX",
        "S910",
        "wireless",
        ("magstripe", "ic_chip", "nfc", "printer", "cellular"),
        "0908",
        ("Prolin 2.4.95", "Prolin 2.5.12"),
        10,
    ),
    (
        "pax-s90",
        "PAX",
        "S90",
        "traditional",
        ("magstripe", "ic_chip", "printer"),
        "0450",
        ("Prolin 2.2.31",),
        5,
    ),
    (
        "newland-me31",
        "Newland",
        "ME31",
        "e_signature",
        ("magstripe", "ic_chip", "nfc", "qr_scan", "cellular"),
        "N3100",
        ("ME31 V3.1.8", "ME31 V3.2.0"),
        18,
    ),
    (
        "newland-n910",
        "Newland",
        "N910",
        "smart",
        ("magstripe", "ic_chip", "nfc", "qr_scan", "printer", "cellular", "wifi"),
        "N9100",
        ("NL-OS 7.1 V2.3.5", "NL-OS 7.1 V2.4.0"),
        12,
    ),
    (
        "newland-me30s",
        "Newland",
        "ME30S",
        "mpos",
        ("magstripe", "ic_chip", "nfc"),
        "N3000",
        ("ME30S V1.9.3",),
        6,
    ),
    (
        "sunmi-p2",
        "Sunmi",
        "P2",
        "smart",
        ("magstripe", "ic_chip", "nfc", "qr_scan", "printer", "cellular", "wifi", "gps"),
        "P2120",
        ("SUNMI OS 2.5.0", "SUNMI OS 2.6.1"),
        12,
    ),
    (
        "landi-a8",
        "LANDI",
        "A8",
        "smart",
        ("magstripe", "ic_chip", "nfc", "qr_scan", "printer", "cellular", "wifi"),
        "LA8",
        ("LANDI OS 5.1.2",),
        7,
    ),
    (
        "centerm-k9",
        "Centerm",
        "K9",
        "smart",
        ("magstripe", "ic_chip", "nfc", "qr_scan", "printer", "cellular"),
        "CK9",
        ("K9 V1.6.0", "K9 V1.7.2"),
        5,
    ),
    (
        "centerm-c960e",
        "Centerm",
        "C960E",
        "e_signature",
        ("magstripe", "ic_chip", "nfc", "cellular"),
        "C96E",
        ("C960E V2.0.4",),
        3,
    ),
)

# City, UnionPay-style 4-digit area code used in MIDs, districts, roads.
CITIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("上海", "2900", ("浦东新", "徐汇", "静安", "长宁", "杨浦", "闵行")),
    ("北京", "1000", ("朝阳", "海淀", "东城", "西城", "丰台", "通州")),
    ("广州", "5810", ("天河", "越秀", "海珠", "荔湾", "白云", "番禺")),
    ("深圳", "5840", ("福田", "南山", "罗湖", "宝安", "龙华", "龙岗")),
    ("杭州", "3310", ("西湖", "上城", "拱墅", "滨江", "萧山", "余杭")),
    ("成都", "6510", ("锦江", "青羊", "武侯", "成华", "金牛", "高新")),
    ("武汉", "5210", ("江岸", "江汉", "武昌", "洪山", "汉阳", "青山")),
    ("南京", "3010", ("玄武", "秦淮", "鼓楼", "建邺", "栖霞", "江宁")),
    ("西安", "7910", ("雁塔", "碑林", "莲湖", "新城", "未央", "长安")),
    ("重庆", "6530", ("渝中", "江北", "南岸", "沙坪坝", "九龙坡", "渝北")),
    ("苏州", "3050", ("姑苏", "吴中", "相城", "工业园", "虎丘", "吴江")),
    ("长沙", "5510", ("芙蓉", "天心", "岳麓", "开福", "雨花", "望城")),
)
# Each city's centre in WGS-84 degrees (latitude, longitude): the demo's stores are spread around it,
# the terminals' reported positions near their store (fleet's relocation alerts measure from here).
CITY_CENTRES: dict[str, tuple[float, float]] = {
    "上海": (31.230416, 121.473701),
    "北京": (39.904211, 116.407395),
    "广州": (23.129110, 113.264385),
    "深圳": (22.543099, 114.057868),
    "杭州": (30.274084, 120.155070),
    "成都": (30.572815, 104.066801),
    "武汉": (30.592849, 114.305539),
    "南京": (32.060255, 118.796877),
    "西安": (34.341574, 108.939770),
    "重庆": (29.563009, 106.551556),
    "苏州": (31.298886, 120.585316),
    "长沙": (28.228209, 112.938814),
}
ROADS = (
    "人民",
    "解放",
    "中山",
    "建设",
    "和平",
    "新华",
    "文化",
    "长江",
    "黄河",
    "光明",
    "幸福",
    "友谊",
    "青年",
    "东风",
)

# MCC -> (category words for shop names, enterprise industry word)
MCCS: dict[str, tuple[tuple[str, ...], str]] = {
    "5812": (("餐厅", "饭店", "小厨", "私房菜"), "餐饮管理"),
    "5814": (("面馆", "饺子馆", "米粉店", "快餐"), "餐饮管理"),
    "5411": (("超市", "生鲜超市", "便民超市"), "商贸"),
    "5499": (("便利店", "食品店", "零食铺"), "商贸"),
    "5912": (("大药房", "药店", "健康药房"), "医药连锁"),
    "5651": (("服饰", "衣橱", "时装店"), "服饰"),
    "5941": (("体育用品", "运动馆"), "体育用品"),
    "5942": (("书店", "书屋"), "文化传播"),
    "7230": (("美发沙龙", "造型", "美容院"), "美容美发"),
    "5992": (("花艺", "鲜花店"), "园艺"),
    "7011": (("酒店", "宾馆", "客栈"), "酒店管理"),
    "5533": (("汽配", "汽车用品"), "汽车服务"),
    "5311": (("百货", "购物中心"), "百货"),
    "5732": (("数码", "电器行"), "电子科技"),
}
MCC_WEIGHTS = {
    "5812": 16,
    "5814": 14,
    "5411": 10,
    "5499": 12,
    "5912": 6,
    "5651": 8,
    "5941": 2,
    "5942": 2,
    "7230": 8,
    "5992": 3,
    "7011": 4,
    "5533": 4,
    "5311": 2,
    "5732": 5,
}

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "晓东",
    "建华",
    "志强",
    "海燕",
    "丽华",
    "国庆",
    "春梅",
    "晓明",
    "文博",
    "子涵",
    "思远",
)
BRAND_SYLLABLES = "汇通联信达盛源诚瑞泰安鑫华宏嘉恒兴隆福顺祥和美佳惠康乐丰"
SHOP_PREFIXES = ("老", "小", "好", "新", "金", "福", "开心", "一品", "百味", "乐")
AGENT_SUFFIXES = ("信息技术有限公司", "商务服务有限公司", "科技有限公司", "支付服务有限公司")

CARRIERS = ("顺丰速运", "京东物流", "中通快递", "圆通速递", "EMS")
