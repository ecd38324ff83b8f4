"""Complainants' personal information stays out of alerts (a security and privacy review: a caller's name,
ID card number, mobile number and address reached a DingTalk group, a webhook, an e-mail and the alert exports
verbatim).  The credit file keeps the text as received: the bureau handles the complaint with it."""
from __future__ import annotations

import pytest

from processors.personal_info import mask_personal_info
from processors.step import Rules, replay
from schemas.policy import Policy
from processors.warnings import ALERT_KIND
from tests.test_risk import E, ev, registered

CALLER = "我叫王小明，身份证330106199001011234，电话13812345678，邮箱 wangxm@example.com，座机0571-88123456。喝了后腹泻呕吐"


@pytest.mark.parametrize("text, masked", [
    (CALLER, "我叫王**，身份证330106********1234，电话138****5678，邮箱 w***@example.com，座机0571-****3456。喝了后腹泻呕吐"),
    ("联系电话 138-1234-5678，+86 139 1234 5678", "联系电话 138****5678，+86 139****5678"),
    ("姓名：李四 手机15800001111", "姓名：李* 手机158****1111"),
    ("旧身份证 330106900101123 已作废", "旧身份证 330106*****1123 已作废"),
    # what a complaint says of the product stays: batch and sample numbers, dates, doses, counts
    ("批号20251224 生产日期2025-12-24 抽样编号DC25330146700025 余氯0.05mg/L 共5人 2瓶", None),
    # (a review of the round) the complaint record's own forms, brackets, full-width digits …
    ("投诉人：王小明", "投诉人：王**"),
    ("来电人王小明，电话（0571）87654321", "来电人王**，电话0571-****4321"),
    ("本人王小明，今天买的", "本人王**，今天买的"),
    ("１３８１２３４５６７８", "138****5678"),
    # … and numbers a product is known by, which read like an ID card, a phone or a landline
    ("批号 202603251234567，批次 13812345678，小票编号 13812345678，批号 057120260325，编号0571-2026-0325", None),
    ("本人在超市购买", None),
    # (the credit-file auditor's review) the forms a caller also uses, an ID in groups, QQ and WeChat
    ("我是王小明，电话13812345678", "我是王**，电话138****5678"),
    ("投诉人张三丰反映产品有异物", "投诉人张**反映产品有异物"),
    ("身份证 3301 0619 9001 0112 34", "身份证 330106********1234"),
    ("身份证330106-19900101-1234号", "身份证330106********1234号"),
    ("QQ 123456789，微信号：wxid_ab12cd", "QQ 12*****89，微信号：wx*********"),
    ("我是消费者，我是附近居民", None),
    ("已回电王小明，企业已召回；已回电给消费者，已致电了解情况", "已回电王**，企业已召回；已回电给消费者，已致电了解情况"),
    # … and (the round's diff review) what those forms begin in ordinary sentences, and numbers in groups that are no ID
    ("我是来投诉的，我是昨天买的，我是一名学生，我是老客户，已回电答复，经致电核实，已致电企业，要求召回", None),
    ("批号WXSC2026031501，抽样单 2026-0301-0001-0002-03 不合格", None),
    ("单号 12345 13812345678", "单号 12345 138****5678"),
    # (the complaints desk's review) the 12315 form's commonest wordings, relatives, local numbers, Chinese numerals …
    ("消费者李明反映：桶装水有异味", "消费者李*反映：桶装水有异味"),
    ("已答复消费者王小明，消费者表示满意", "已答复消费者王**，消费者表示满意"),
    ("已电话告知消费者刘洋", "已电话告知消费者刘*"),
    ("12315工单：诉求人：王小明，联系电话：13812345678", "12315工单：诉求人：王**，联系电话：138****5678"),
    ("我老婆叫张丽丽，喝了以后拉肚子", "我老婆叫张**，喝了以后拉肚子"),
    ("请联系我爸爸王大锤13912345678", "请联系我爸爸王**139****5678"),
    ("联系电话：87654321（家里座机）", "联系电话：****4321（家里座机）"),
    ("座机 8765432，手机：138 1234 5678", "座机 ****5432，手机：138****5678"),
    ("身份证编号：330106199001011234", "身份证编号：330106********1234"),
    ("我姓王，叫王建国，电话一三八一二三四五六七八", "我姓王，叫王**，电话138****5678"),
    # … without taking the enterprise complained of for a person, nor ordinary sentences for names
    ("被投诉人：清源水厂，投诉人：孙悟空，电话：0571-88886666", "被投诉人：清源水厂，投诉人：孙**，电话：0571-****6666"),
    ("被举报人：清源水厂", None),
    ("消费者表示满意；消费者反映桶装水有异味；我爸爸喝了以后拉肚子；我们叫王师傅来；叫了救护车；告知其整改", None),
    ("批号20260325，共87654321瓶，三五成群，一二三四五六七八", None),
    # (the twenty-seventh round) a home address keeps its street and community, not the door it leads to …
    ("我家住城关镇阳光小区3栋2单元501室，喝了以后腹泻", "我家住城关镇阳光小区*栋*单元***室，喝了以后腹泻"),
    ("住址：东风路12号，电话13812345678", "住址：东风路**号，电话138****5678"),
    ("家住张家村五组，孩子喝了拉肚子", "家住张家村*组，孩子喝了拉肚子"),
    ("收货地址：幸福里小区B座1203", "收货地址：幸福里小区*座****"),
    ("我住三号楼二单元，居住地：东风路88弄6号401", "我住*号楼*单元，居住地：东风路**弄*号***"),
    # … while where the product was bought, and a stay in hospital, are no one's home
    ("在城关路12号超市买的，购买地址：城关路12号，住在医院三天，住在阳光小区", None),
    # (the alert-delivery review) a clause opening with a bare 住, and the water plants' delivery addresses …
    ("电话13812345678，住良渚街道玉鸟路18号3幢502室", "电话138****5678，住良渚街道玉鸟路**号*幢***室"),
    ("住阳光小区5栋，送水地址：阳光小区5栋2单元301室", "住阳光小区*栋，送水地址：阳光小区*栋*单元***室"),
    ("配送地址：东风路12号；订水地址为幸福里3幢；每周送水到城关镇新村8号", "配送地址：东风路**号；订水地址为幸福里*幢；每周送水到城关镇新村*号"),
    # … but not a stay (住院3天, 住宿2晚), nor 住 inside a word (记住3号桶)
    ("孩子住院3天，住宿2晚，记住3号桶别喝", None),
    ("住所：东风路12号3幢502室", "住所：东风路**号*幢***室"),
    # (the 住 review) a clause opening with 住户, 住建局 or 住酒店 names no home: its dates, batches and quantities stay …
    ("投诉人称，住户反映3月5日购买的批号20260301桶装水有异味", None),
    ("住户称18.9L桶装水有絮状物", None),
    ("住户共12户均饮用该厂B2批次桶装水", None),
    ("住建局通报：该厂2026年3月被责令整改", None),
    ("住酒店期间购买的5L瓶装水", None),
    ("住宅楼下买的3桶水，住房在装修，住宾馆2晚，住过阳光小区5栋", None),
    # … and after a home's door numbers, what the clause goes on to say of the product stays too
    ("住阳光小区5栋2单元301室喝了18.9L的水", "住阳光小区*栋*单元***室喝了18.9L的水"),
    ("住东风路88弄6号401，住张家村五组", "住东风路**弄*号***，住张家村*组"),
    # … and so after 家住, 住址 or a delivery address (a clause with no street or building word is read whole)
    ("家住阳光小区5栋2单元301室喝了18.9L的水", "家住阳光小区*栋*单元***室喝了18.9L的水"),
    ("送水地址：阳光小区5栋2单元301室放了3桶18.9L的水", "送水地址：阳光小区*栋*单元***室放了3桶18.9L的水"),
    ("家住城关镇12号", "家住城关镇**号"),
    # (the complaints review r26) the separators an input method gives — full-width hyphen, dashes, minus sign,
    # ideographic space — and dots, in mobile, landline, local and grouped ID numbers …
    ("我电话１３８－１２３４－５６７８，喝了以后腹泻。", "我电话138****5678，喝了以后腹泻。"),
    ("我手机138\u30001234\u30005678，喝了以后腹泻。", "我手机138****5678，喝了以后腹泻。"),
    ("手机：138.1234.5678", "手机：138****5678"),
    ("手机138\u20101234\u20115678，138\u20131234\u20145678，138\u20151234\u22125678", "手机138****5678，138****5678，138****5678"),
    ("＋86－139－1234－5678", "＋86－139****5678"),
    ("座机0571－87654321，（0571）8765\u30004321，0571.8765.4321", "座机0571-****4321，0571-****4321，0571-****4321"),
    ("联系电话：8765－4321", "联系电话：****4321"),
    ("身份证330106－19900101－1234，身份证3301\u30000619\u30009001\u30000112\u300034", "身份证330106********1234，身份证330106********1234"),
    # … while a code with those hyphens, a concentration and a dotted date stay
    ("编号0571－2026－0325，余氯0.05mg/L，2026.03.05生产", None),
    # … and the letters' and case files' forms of a name: after a colon, or starting with a common surname
    ("与来信重复，来信人李大伟 13912345678", "与来信重复，来信人李** 139****5678"),
    ("反映人：张小红，当事人王小明称，患者刘洋", "反映人：张**，当事人王**称，患者刘*"),
    ("来信人：欧阳娜娜", "来信人：欧***"),
    ("患者腹泻，当事人表示不满，来信人反映水有异味，反映人称已就医，患者出现呕吐", None),
    ("被反映人：清源水厂", None),
])
def test_numbers_names_and_addresses_of_mail_are_masked_and_the_products_details_kept(text, masked):
    assert mask_personal_info(text) == (text if masked is None else masked)


def _illness(at: str, text: str, cid: str = "TS-PII-1", verified: bool = True):
    return ev("complaint.received", at, complaint_id=cid, channel="12315", category="illness", text=text, verified=verified)


def test_the_illness_alert_quotes_the_complaint_without_the_caller(rules):
    complaint = _illness("2026-03-02T10:00:00+08:00", CALLER)
    state, effects = replay([registered(), complaint], rules)
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "complaint.illness"]
    said = alert["message_zh"] + alert["message_en"] + str(alert["evidence"])
    for secret in ("13812345678", "330106199001011234", "wangxm@", "88123456", "王小明"):
        assert secret not in said
    assert "喝了" in alert["message_zh"] and "138****5678" in alert["evidence"]["excerpt"]
    # the credit file keeps what the caller said: the bureau calls back with it
    assert state.files[E].complaints[0].text == CALLER


def test_excerpt_chars_zero_quotes_nothing(rules):
    pol = rules.policy.model_dump()
    pol["warnings"]["complaint_illness"]["excerpt_chars"] = 0
    quiet = Rules(catalogue=rules.catalogue, policy=Policy.model_validate(pol))
    _, effects = replay([registered(), _illness("2026-03-02T10:00:00+08:00", CALLER)], quiet)
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "complaint.illness"]
    assert "腹泻" not in alert["message_zh"] and "投诉内容未在预警中引用" in alert["message_zh"]


def test_the_illness_alert_does_not_lead_to_the_callers_door(rules):
    text = "家住城关镇阳光小区3栋2单元501室，在城关路12号超市买的桶装水，喝了后腹泻"
    state, effects = replay([registered(), _illness("2026-03-02T10:00:00+08:00", text)], rules)
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "complaint.illness"]
    said = alert["message_zh"] + str(alert["evidence"])
    assert "501" not in said and "3栋" not in said and "阳光小区*栋*单元***室" in said
    assert "城关路12号超市" in said  # where it was bought is the product's trail
    assert state.files[E].complaints[0].text == text


def test_an_alert_sent_about_a_complaint_does_not_carry_the_delivery_address(rules):
    from tests.test_alerts import County, policy

    text = "消费者李明，电话13812345678，住良渚街道玉鸟路18号3幢502室。送水地址：阳光小区5栋2单元301室。喝了以后腹泻呕吐"
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    told = [n for ch in c.feed(_illness("2026-03-20T11:02:00+08:00", text)) for n in ch.notifications]
    assert told
    for n in told:
        for sent in (n.text_zh, n.to_json()):
            assert "18号3幢502室" not in sent and "5栋2单元301室" not in sent
        assert "住良渚街道玉鸟路**号*幢***室" in n.text_zh and "送水地址：阳光小区*栋*单元***室" in n.text_zh
    assert c.state.files[E].complaints[0].text == text  # (the credit file keeps what the caller said)


def test_the_illness_alert_masks_a_number_written_with_full_width_hyphens_and_a_letters_name(rules):
    text = "来信人李大伟，我电话１３８－１２３４－５６７８，手机138\u30001234\u30005678，喝了以后腹泻。"
    _, effects = replay([registered(), _illness("2026-03-02T10:00:00+08:00", text)], rules)
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "complaint.illness"]
    said = alert["message_zh"] + str(alert["evidence"])
    for secret in ("１３８－１２３４", "138－1234－5678", "138\u30001234", "李大伟"):
        assert secret not in said
    assert "138****5678" in said and "来信人李**" in said
