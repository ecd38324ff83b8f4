"""Personal information in what the public writes, masked before it leaves the credit file.

A complaint's text is the caller's own words, and callers give their name, mobile number, ID card number,
e-mail or landline for the hotline to call back.  The credit file keeps the text as received (the bureau
handles the complaint with it); an alert quotes it to a duty desk's group chat, a webhook, an e-mail and
the alert exports, and a control chart's evidence lists it beside a signal.  《个人信息保护法》 asks that
only what the purpose needs be passed on: an alert needs what was eaten and what happened, not who rang.
Masked as Chinese systems show such numbers (138****5678, 330106********1234), so a reader still sees
that the caller left a number and the bureau can find it in the complaint record.

A home address is masked to its street or community after the words that say it is the caller's own (家住, 住在,
住址, 收货地址, 送水地址 …, or a clause opening with 住 and naming a street or building): the building, unit, room and house numbers go (家住阳光小区*栋*单元***室), so an alert still
says which community a complaint came from; a shop's address (在城关路12号超市买的) is the product's, and stays.
What else is matched is listed below: ID card
numbers (also written in groups, or after 身份证编号), mobile and landline numbers (a local one without its area code
after 电话/座机/联系; numbers dictated in Chinese numerals, 一三八…), e-mail addresses, QQ numbers and WeChat ids, and a
name the caller gives, or the hotline writes, after the forms below (消费者李明反映, 诉求人：王小明, 我老婆叫张丽丽).
"""
from __future__ import annotations

import re

# a number a product or a record is known by, not a person: 批号 202603251234567 is no ID card, 批次 138… no phone
# (身份证编号 is an ID card's number all the same)
_PRODUCT_NUMBER = re.compile(r"(批号|批次|(?<!身份证)(?<!证件)编号|条码|生产日期|日期|单号|订单)[:：]?\s*[A-Za-z0-9-]*$")
# what people write between a number's groups: a hyphen or a space as typed on a phone or a PC, and as an input
# method gives them — the full-width hyphen (－), the dashes (‐ ‑ ‒ – — ―), the minus sign (−), the ideographic space
# and a dot (138.1234.5678) — each of which, left out, let a number through whole (１３８－１２３４－５６７８)
_SEP = "[- .\u2010-\u2015\u2212\uFF0D\u3000]"
# the hyphens among them: no number starts or ends at one (0571-2026-0325 is one code, not a landline inside it)
_HYPHEN = "\u2010-\u2015\u2212\uFF0D-"
# an 18-digit ID card number (the last may be X), or an old 15-digit one; not inside a longer run of digits or letters
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
# the same written in groups (3301 0619 9001 0112 34, 330106-19900101-1234): read before the phone numbers, whose
# patterns would take a part of it and leave the birth date showing
_ID_CARD_GROUPED = re.compile(r"(?<![0-9A-Za-z])(\d(?:" + _SEP + r"?\d){16}" + _SEP + r"?[\dXx])(?![0-9A-Za-z])")
# a QQ number or a WeChat id left for a call back (QQ 123456789, 微信号：wxid_ab12cd)
_QQ = re.compile(r"((?:QQ|qq|Qq)\s*(?:号码?)?[:：]?\s*)(\d{2})(\d{1,7})(\d{2})(?!\d)")
# (vx / wx only as a word of their own with a colon: 批号WXSC2026… is a batch)
_WECHAT = re.compile(r"((?:微信号?\s*[:：]?|(?<![A-Za-z0-9])(?:[Vv][Xx]|[Ww][Xx])\s*[:：])\s*)([A-Za-z][-_A-Za-z0-9]{5,19})")
# a mainland mobile number, optionally +86 / 86 before it, with spaces or hyphens as people write them
_MOBILE = re.compile(r"(?<!\d)((?:[+＋]?86" + _SEP + r"?)?1[3-9]\d)" + _SEP + r"?(\d{4})" + _SEP + r"?(\d{4})(?!\d)")
# a landline: area code 0xx / 0xxx (in brackets or not), then 7 or 8 digits
_LANDLINE = re.compile(r"(?<![\d" + _HYPHEN + r"])[(（]?(0\d{2,3})[)）]?" + _SEP + r"?(\d{3,4})" + _SEP + r"?(\d{4})(?![\d"
                       + _HYPHEN + r"])")
# a local number without its area code (87654321, 8765432) is a number like any other: only after the words that
# say it is a telephone's (联系电话：87654321, 座机 8765432) — a bare run of eight digits is as often a batch or a date
_LOCAL_NUMBER = re.compile(r"((?:电话|座机|固话|联系方式|联系)(?:号码|号)?(?:是|为)?\s*[:：]?\s*)(\d{3,4})" + _SEP + r"?(\d{4})(?![\d"
                           + _HYPHEN + r"])")
# a number written in Chinese numerals (电话一三八一二三四五六七八), as callers dictate them to the hotline
_CHINESE_DIGITS = str.maketrans("〇零一二三四五六七八九幺", "001234567891")
_CHINESE_RUN = re.compile(r"[〇零一二三四五六七八九幺]{7,18}")
_FULLWIDTH_DIGITS = {0xFF10 + d: 0x30 + d for d in range(10)}
# a caller's home: what follows these words up to the clause's end (家住城关镇阳光小区3栋2单元501室，…).  Not 地址 alone:
# 购买地址 / 超市地址 is where the product was bought, which an alert needs
# The water plants' own words for it too (送水地址, 订水地址, 送水到: a bucket is delivered to the door)
_HOME = re.compile(r"((?:家住|住在|我住|现住|住址|家庭住址|家庭地址|我家(?:地址)?(?:在|是)|居住(?:在|于|地)|联系地址|通讯地址|收货地址|送货地址"
                   r"|送水地址|配送地址|订水地址|送水到)"
                   r"(?:是|为)?\s*[:：]?\s*)([^，,。；;！!？?\n]{1,60})")
# A bare 住 opening a clause, as the hotline writes an address down (电话…，住良渚街道玉鸟路18号3幢502室), is an address only
# when a street, village, community or building follows in its clause: 住户反映3月5日购买的批号20260301…, 住建局通报…
# 2026年3月, 住酒店期间购买的5L… are residents, an authority and a stay, whose dates, batches and quantities a recall
# needs.  Not 住户/住宅/住房/住建/住店/住酒店/住宾馆, nor a stay (住院/住宿/住了/住过); 住在/住址 are read above.  Only the
# address is read, up to its last street or building word and the door numbers right after it (…88弄6号401): what the
# clause goes on to say (…301室喝了18.9L的水) is the product's
_ADDRESS_WORD = r"(?:路|街|巷|弄|村|小区|社区|苑|花园|栋|幢|单元|室|号楼)"
_DOOR_CHARS = r"[-0-9A-Za-z〇零一二三四五六七八九十百幺]"
_BARE_HOME = re.compile(r"((?:^|(?<=[，,。；;！!？?：:、\s]))住(?![户宅房建店酒宾院宿了过在址])\s*[:：]?\s*)"
                        r"([^，,。；;！!？?\n]{0,60}" + _ADDRESS_WORD
                        + r"(?:" + _DOOR_CHARS + r"+(?:栋|幢|号楼|楼|单元|室|号|组|层|排|弄|巷|座|户))*" + _DOOR_CHARS + r"*)")
# a home after 家住/住址/送水地址…, likewise read up to its last street or building word and the door numbers after it: what
# its clause goes on to say (家住…301室喝了18.9L的水) is the product's; with no such word (家住城关镇12号) the clause is read whole
_ADDRESS_PART = re.compile(r"[^，,。；;！!？?\n]{0,60}" + _ADDRESS_WORD
                           + r"(?:" + _DOOR_CHARS + r"+(?:栋|幢|号楼|楼|单元|室|号|组|层|排|弄|巷|座|户))*" + _DOOR_CHARS + r"*")
# in it, the numbers that find a door: digits and letters (3栋, 2单元, 501室, A座, 12号), and Chinese numerals before a
# building's parts (三栋, 二单元, 五组); the street's and the community's names stay
_DOOR_NUMBER = re.compile(r"[0-9A-Za-z]+|[〇零一二三四五六七八九十百幺]+(?=\s*(?:栋|幢|号楼|楼|单元|室|号|组|层|排|弄|巷|座|户))")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# a name the caller gives: 我叫王小明, 我是王小明, 姓名：王小明, 联系人 王先生, 投诉人张三丰反映, and the outcome's 已回电王小明
# (the surname stays, as 王**)
# (被投诉人 is the enterprise complained of: 被投诉人：清源水厂 is no one's name); a relative the caller names (我老婆叫张丽丽,
# 请联系我爸爸王大锤), the 12315 form's 诉求人 and its usual 消费者李明反映 / 已答复消费者王小明 too
_RELATIVES = "爸爸|妈妈|父亲|母亲|老婆|老公|爱人|丈夫|妻子|儿子|女儿|孩子|家人|爷爷|奶奶|外婆|外公|姐姐|哥哥|弟弟|妹妹"
_NAME = re.compile(r"(我叫\s*|我是\s*|回电\s*|致电\s*|答复\s*|告知\s*|消费者\s*|(?:名叫|他叫|她叫|(?<![\u4e00-\u9fff])叫)\s*|我的?(?:" + _RELATIVES + r")(?:名叫|叫|是)?\s*|我的名字是\s*|本人姓名[:：]?\s*"
                   r"|姓名[:：]?\s*|联系人[:：]?\s*|(?<!被)投诉人[:：]?\s*|诉求人[:：]?\s*|来电人[:：]?\s*|(?<!被)举报人[:：]?\s*"
                   r"|来信人[:：]?\s*|(?<!被)反映人[:：]?\s*|当事人[:：]?\s*|患者[:：]?\s*"
                   r"|本人(?=[\u4e00-\u9fff]{2,3}[，,。；;：:\s]))"
                   r"([\u4e00-\u9fff])([\u4e00-\u9fff]{1,3}?)(?=[，,。；;：:\s（(\d]|先生|女士|$|电话|手机|身份证|住|反映|投诉|举报|来电|称|说|表示)")
# the words before which what follows is a name only when it starts with a common surname: they begin ordinary
# sentences too (我是来投诉的, 已回电答复, 消费者表示满意, 叫了救护车, 我爸爸喝了以后)
_SURNAME_CHECKED = ("我是", "回电", "致电", "答复", "告知", "消费者", "名叫", "他叫", "她叫", "叫")
# the letters' and the case files' forms (来信人李大伟, 反映人：张小红, 当事人王小明称, 患者刘洋): a name after a colon, else only
# after a common surname — 患者腹泻，当事人表示不满，来信人反映… are no one's name
_SURNAME_CHECKED_WITHOUT_COLON = ("来信人", "反映人", "当事人", "患者")
# and even so, not what such a sentence goes on with, which starts with a surname's character as often as a name does:
# 患者高热，患者黄疸，当事人陈述，当事人程序违法，当事人金额较小，来信人万分着急 are a symptom, a statement, a plea
_NOT_A_NAME_AFTER_FORM = ("高烧", "高热", "高温", "高血", "高度", "高位", "黄疸", "陈述", "陈列", "严重", "严正", "严格", "程序", "程度",
                          "金额", "金钱", "钱款", "万分", "万一", "周身", "周边", "周围", "方面", "方向", "方式", "方才", "白天", "白细胞",
                          "于是", "于当", "曾经", "曾因", "曾在", "余下", "任何", "马上", "向本", "向其", "向我", "向该", "付款", "付清",
                          "付了", "毛发", "石块", "石头", "田间", "汤药", "龙头", "钟头", "董事", "许多", "许可", "苏醒", "叶酸", "姜汤",
                          "范围", "孔洞", "江边")
# a four-character name after them without a colon is one with a two-character surname (来信人欧阳娜娜称); 当事人金额较小,
# 来信人万分着急 are four characters of an idiom's shape
_COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "令狐", "端木")
_RELATIVE = re.compile(r"我的?(?:" + _RELATIVES + ")")
# After 我是 / 回电 / 致电, a name only when it starts with one of the commonest surnames (about nine in ten people
# carry one): those words begin most sentences too — 我是来投诉的, 已回电答复, 经致电核实 — which are no one's name
_SURNAMES = frozenset("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范"
                      "金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
SURNAMES = _SURNAMES
# and, after 我是, what follows when it is not a name even so: 我是消费者, 我是附近居民
_NOT_A_NAME = frozenset({"消费者", "顾客", "居民", "村民", "市民", "家长", "业主", "学生", "老师", "患者", "病人", "本人", "附近", "当地",
                         "外地", "买家", "客户", "游客", "员工", "职工", "孩子", "妈妈", "爸爸", "老人"})


def mask_personal_info(text: str) -> str:
    """``text`` with ID card numbers, mobile and landline numbers, e-mail addresses, a name the writer gives and the
    door numbers of a home address masked (the kind of each still readable)."""
    if not text:
        return text
    # full-width digits as ASCII (１３８…): \d takes them, the patterns' 1[3-9] and 0 would not (the rest of the
    # text, its full-width punctuation, stays as written)
    text = text.translate(_FULLWIDTH_DIGITS)
    text = _CHINESE_RUN.sub(_chinese_number, text)

    def person(sub):
        def masked(m: re.Match[str]) -> str:
            return m.group(0) if _PRODUCT_NUMBER.search(m.string[max(0, m.start() - 12):m.start()]) else sub(m)
        return masked

    # ID numbers first: an 18-digit number holds what would read as a mobile number
    text = _ID_CARD.sub(person(lambda m: m.group(1)[:6] + "*" * (len(m.group(1)) - 10) + m.group(1)[-4:]), text)

    def grouped(m: re.Match[str]) -> str:
        digits = re.sub(_SEP, "", m.group(1))
        born = digits[6:14]
        # only an ID's shape: a birth date in its 7th–14th digits (a report or sample number written in groups has none)
        if not (born[:2] in ("19", "20") and "01" <= born[4:6] <= "12" and "01" <= born[6:8] <= "31"):
            return m.group(0)
        return digits[:6] + "*" * 8 + digits[-4:]

    text = _ID_CARD_GROUPED.sub(person(grouped), text)
    text = _MOBILE.sub(person(lambda m: f"{m.group(1)}****{m.group(3)}"), text)
    text = _LANDLINE.sub(person(lambda m: f"{m.group(1)}-****{m.group(3)}"), text)
    text = _LOCAL_NUMBER.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***{m.group(2)}", text)
    text = _QQ.sub(lambda m: m.group(1) + m.group(2) + "*" * len(m.group(3)) + m.group(4), text)
    text = _WECHAT.sub(person(lambda m: m.group(1) + m.group(2)[:2] + "*" * (len(m.group(2)) - 2)), text)

    def name(m: re.Match[str]) -> str:
        word = m.group(2) + m.group(3)
        checked = m.group(1).startswith(_SURNAME_CHECKED) or _RELATIVE.match(m.group(1)) or (
            m.group(1).startswith(_SURNAME_CHECKED_WITHOUT_COLON) and not m.group(1).rstrip().endswith((":", "：")))
        if checked and (
                (word[0] not in _SURNAMES and not word.startswith(_COMPOUND_SURNAMES))
                or any(word.startswith(w) or w.startswith(word) for w in _NOT_A_NAME)):
            return m.group(0)  # (我是消费者, 已回电给顾客: no name given)
        if checked and m.group(1).startswith(_SURNAME_CHECKED_WITHOUT_COLON) and (
                word.startswith(_NOT_A_NAME_AFTER_FORM) or (len(word) == 4 and not word.startswith(_COMPOUND_SURNAMES))):
            return m.group(0)  # (患者高热，当事人陈述，来信人万分着急: no name given)
        return m.group(1) + m.group(2) + "*" * len(m.group(3))

    text = _NAME.sub(name, text)
    # last: a phone number written after the address (住在…501室电话138…) is masked as a number already
    def door(m: re.Match[str]) -> str:
        return m.group(1) + _DOOR_NUMBER.sub(lambda d: "*" * len(d.group(0)), m.group(2))

    def home(m: re.Match[str]) -> str:
        address = _ADDRESS_PART.match(m.group(2))
        end = address.end() if address else len(m.group(2))
        return m.group(1) + _DOOR_NUMBER.sub(lambda d: "*" * len(d.group(0)), m.group(2)[:end]) + m.group(2)[end:]

    text = _HOME.sub(home, text)
    text = _BARE_HOME.sub(door, text)
    return text


def _chinese_number(m: re.Match[str]) -> str:
    """A run of Chinese numerals, masked as its digits when it is a mobile or an ID card number, or a telephone's
    number after 电话/座机/联系; else as written (三五成群 is seven characters of no one's number)."""
    digits = m.group(0).translate(_CHINESE_DIGITS)
    if re.fullmatch(r"1[3-9]\d{9}", digits):
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) in (15, 18):
        return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
    if len(digits) in (7, 8) and re.search(r"(电话|座机|固话|联系)\D{0,4}$", m.string[max(0, m.start() - 8):m.start()]):
        return f"****{digits[-4:]}"
    return m.group(0)
