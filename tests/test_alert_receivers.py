"""The receivers against real servers on loopback: an SMTP server (aiosmtpd) and HTTP servers
standing in for a webhook and the DingTalk / WeCom robots.  What they received is read back."""
from __future__ import annotations

import email
import email.policy
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from alerts.notification import REASONS_ZH, Notification
from alerts.receivers import WECOM_MAX_BYTES, SendResult, SmtpConfig, send
from schemas.policy import Receiver
from tests.conftest import free_port

SUBJECT = "【预警·高】清溪桶装水厂 抽检不合格"
TEXT = ("清溪桶装水厂：饮用纯净水（抽样编号 DC24330110001，抽样日期 2024-05-06）抽检不合格，不合格项目：铜绿假单胞菌。\n"
        "\n"
        "请于 48 小时内核查处置，并督促企业召回同批次产品。\n"
        "证据：GB 19298-2014 限量 0/250mL，检出 12 CFU/250mL。")


def notification(**changes) -> Notification:
    base = dict(delivery_id="d-7c1e0a5b9f", alert_id="AL-E-330110-001-sampling.unqualified", enterprise_id="E-330110-001",
                receiver="county-desk", channel="email", reason="opened", subject_zh=SUBJECT, text_zh=TEXT,
                alert={"alert_id": "AL-E-330110-001-sampling.unqualified", "severity": "high", "title_zh": "抽检不合格",
                       "evidence": {"items": ["铜绿假单胞菌"], "event_ids": ["ev-1"]}})
    return Notification(**{**base, **changes})


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # A proxy from the environment would carry loopback requests away from the test servers.
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- SMTP


class Recorder:
    def __init__(self, rcpt_reply: dict[str, str] | None = None, data_reply: str = "250 OK"):
        self.envelopes = []
        self.rcpt_reply = rcpt_reply or {}
        self.data_reply = data_reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_reply.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply.startswith("250"):
            self.envelopes.append(envelope)
        return self.data_reply


@contextmanager
def smtp_server(handler, **kwargs):
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpConfig(host="127.0.0.1", port=port, sender="qrisk@bureau.example", timeout=5)
    finally:
        controller.stop()


MAIL_TO = ["zhang.wei@bureau.example", "duty-desk@bureau.example"]
EMAIL = Receiver(name="county-desk", kind="email", supervisor="张伟（值班）", to=MAIL_TO)


def test_email_arrives_readable_in_chinese_for_every_recipient():
    handler = Recorder()
    with smtp_server(handler) as cfg:
        result = send(EMAIL, notification(), smtp=cfg)
    assert result == SendResult(ok=True, code=250, error="", retry=True)
    [envelope] = handler.envelopes
    assert envelope.mail_from == "qrisk@bureau.example"
    assert sorted(envelope.rcpt_tos) == sorted(MAIL_TO)
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert msg["Subject"] == SUBJECT
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content().replace("\r\n", "\n").strip() == TEXT
    assert "d-7c1e0a5b9f" in msg["Message-ID"]
    assert msg["X-Qrisk-Alert-Id"] == "AL-E-330110-001-sampling.unqualified"
    assert msg["From"] == "qrisk@bureau.example"
    assert [a.addr_spec for a in msg["To"].addresses] == MAIL_TO
    assert msg["Date"]
    envelope.content.decode("ascii")  # 7-bit clean on the wire: no relay needs 8BITMIME


@pytest.mark.parametrize("reply, code, retry", [("550 mailbox unavailable", 550, False), ("451 try again later", 451, True)])
def test_email_recipient_refused(reply, code, retry):
    handler = Recorder(rcpt_reply={a: reply for a in MAIL_TO})
    with smtp_server(handler) as cfg:
        result = send(EMAIL, notification(), smtp=cfg)
    assert (result.ok, result.code, result.retry) == (False, code, retry)
    # named by the receiver and each recipient's place in its list: addresses stay out of /healthz and the log
    assert result.error.startswith(f"email receiver county-desk via SMTP 127.0.0.1:{cfg.port}: recipients refused: ")
    assert f"recipient #1 {reply}" in result.error and f"recipient #2 {reply}" in result.error
    assert "@" not in result.error
    assert handler.envelopes == []


def test_email_one_recipient_refused_is_not_silent():
    handler = Recorder(rcpt_reply={"duty-desk@bureau.example": "550 mailbox unavailable"})
    with smtp_server(handler) as cfg:
        result = send(EMAIL, notification(), smtp=cfg)
    assert (result.ok, result.code, result.retry) == (False, 550, False)
    assert "recipient #2 550 mailbox unavailable (the other recipients accepted it)" in result.error
    assert "recipient #1" not in result.error and "@" not in result.error
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["zhang.wei@bureau.example"]


@pytest.mark.parametrize("reply, code, retry", [("554 transaction failed", 554, False), ("452 insufficient storage", 452, True)])
def test_email_data_refused(reply, code, retry):
    with smtp_server(Recorder(data_reply=reply)) as cfg:
        result = send(EMAIL, notification(), smtp=cfg)
    assert (result.ok, result.code, result.retry) == (False, code, retry)
    assert "email" in result.error


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_login():
    def authenticator(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"qrisk", b"k3y-1"), handled=False)

    handler = Recorder()
    with smtp_server(handler, authenticator=authenticator, auth_required=True, auth_require_tls=False) as cfg:
        good = send(EMAIL, notification(), smtp=SmtpConfig(**{**cfg.__dict__, "user": "qrisk", "password": "k3y-1"}))
        bad = send(EMAIL, notification(), smtp=SmtpConfig(**{**cfg.__dict__, "user": "qrisk", "password": "wrong"}))
        anonymous = send(EMAIL, notification(), smtp=cfg)
        unsendable = send(EMAIL, notification(), smtp=SmtpConfig(**{**cfg.__dict__, "user": "qrisk", "password": "密钥"}))
    assert good.ok and len(handler.envelopes) == 1
    assert (bad.ok, bad.code, bad.retry) == (False, 535, False)
    assert not anonymous.ok and anonymous.code == 530 and not anonymous.retry
    assert (unsendable.ok, unsendable.retry) == (False, False) and "ASCII" in unsendable.error


def test_email_nothing_listening():
    port = free_port()
    result = send(EMAIL, notification(), smtp=SmtpConfig(host="127.0.0.1", port=port, timeout=2))
    assert (result.ok, result.code, result.retry) == (False, 0, True)
    assert f"127.0.0.1:{port}" in result.error and "refused" in result.error


# --------------------------------------------------------------------------- HTTP


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Http:
    url: str
    seen: list[Seen] = field(default_factory=list)


@contextmanager
def http_server(status: int = 200, body: bytes | dict | Callable[[str], bytes] = b"", delay: float = 0.0,
                headers: dict[str, str] | None = None):
    """``body`` may be a function of the request's path: a gateway that quotes the address it was called at."""
    seen: list[Seen] = []
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, data))
            payload = body(self.path) if callable(body) else json.dumps(body).encode() if isinstance(body, dict) else body
            if delay:
                release.wait(delay)  # released at teardown, so a timed-out request does not hold the test up
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (the timeout test)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield Http(f"http://127.0.0.1:{server.server_address[1]}/hooks/qrisk?token=s3cret", seen)
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def receiver(kind: str, url: str) -> Receiver:
    return Receiver(name=f"{kind}-desk", kind=kind, url=url)


def test_webhook_posts_the_notification_as_utf8_json():
    note = notification(channel="webhook", reason="severity_raised")
    with http_server(204) as srv:
        result = send(receiver("webhook", srv.url), note)
    assert result == SendResult(ok=True, code=204)
    [req] = srv.seen
    assert (req.method, req.path) == ("POST", "/hooks/qrisk?token=s3cret")
    assert req.headers["content-type"] == "application/json; charset=utf-8"
    assert req.headers["idempotency-key"] == "d-7c1e0a5b9f"
    assert req.headers["user-agent"] == "qrisk"
    assert SUBJECT.encode("utf-8") in req.body  # Chinese as UTF-8, not \\u escapes
    assert req.json() == {
        "delivery_id": "d-7c1e0a5b9f", "alert_id": note.alert_id, "enterprise_id": "E-330110-001",
        "reason": "severity_raised", "reason_zh": REASONS_ZH["severity_raised"], "subject_zh": SUBJECT,
        "text_zh": TEXT, "alert": note.alert,
    }


@pytest.mark.parametrize("status, retry", [(500, True), (503, True), (429, True), (408, True), (400, False), (404, False), (410, False)])
def test_webhook_refused(status, retry):
    with http_server(status, b'{"detail": "\xe4\xb8\x8d\xe8\xa1\x8c"}') as srv:
        result = send(receiver("webhook", srv.url), notification())
    assert (result.ok, result.code, result.retry) == (False, status, retry)
    assert f"HTTP {status}" in result.error and "不行" in result.error  # (the answer's own words: they say why)
    assert result.error.startswith(f"webhook receiver webhook-desk ({srv.url.split('/hooks')[0]}/…): HTTP {status} ")
    assert "s3cret" not in result.error and "/hooks" not in result.error


def test_webhook_redirect_is_reported_not_followed():
    with http_server(302, headers={"Location": "/elsewhere?token=other"}) as srv:
        result = send(receiver("webhook", srv.url), notification())
    assert (result.ok, result.code, result.retry) == (False, 302, False)
    assert f"HTTP 302 redirect to {srv.url.split('/hooks')[0]}/… not followed" in result.error
    assert "/elsewhere" not in result.error and "other" not in result.error
    assert len(srv.seen) == 1  # no second request (urllib would have turned the POST into a bodiless GET)


def test_webhook_timeout():
    with http_server(200, delay=3.0) as srv:
        result = send(receiver("webhook", srv.url), notification(), timeout=0.5)
    assert (result.ok, result.code, result.retry) == (False, 0, True)
    assert "timeout" in result.error


def test_webhook_nothing_listening():
    result = send(receiver("webhook", f"http://127.0.0.1:{free_port()}/hook"), notification())
    assert (result.ok, result.code, result.retry) == (False, 0, True)
    assert "refused" in result.error


def test_webhook_large_answer_is_capped():
    with http_server(200, b"x" * 5_000_000) as srv:
        result = send(receiver("webhook", srv.url), notification())
    assert result.ok


# --------------------------------------------------------------------------- robots


def test_dingtalk_markdown():
    with http_server(200, {"errcode": 0, "errmsg": "ok"}) as srv:
        result = send(receiver("dingtalk", srv.url), notification(channel="dingtalk"))
    assert result == SendResult(ok=True, code=200)
    [req] = srv.seen
    assert req.headers["content-type"] == "application/json; charset=utf-8"
    body = req.json()
    assert body["msgtype"] == "markdown" and set(body) == {"msgtype", "markdown"}
    assert body["markdown"]["title"] == SUBJECT
    text = body["markdown"]["text"]
    assert text.startswith(f"#### {SUBJECT}\n\n")
    assert all(line in text for line in TEXT.splitlines())


def test_wecom_markdown():
    with http_server(200, {"errcode": 0, "errmsg": "ok"}) as srv:
        result = send(receiver("wecom", srv.url), notification(channel="wecom"))
    assert result == SendResult(ok=True, code=200)
    body = srv.seen[0].json()
    assert body["msgtype"] == "markdown" and list(body["markdown"]) == ["content"]
    content = body["markdown"]["content"]
    assert content.startswith(f"#### {SUBJECT}\n\n")
    assert all(line in content for line in TEXT.splitlines())


@pytest.mark.parametrize("kind, errcode, errmsg, retry", [
    ("dingtalk", 310000, "keywords not in content", False),
    ("dingtalk", 300001, "token is not exist", False),
    ("dingtalk", 130101, "send too fast, exceed 20 times per minute", True),
    ("wecom", 93000, "invalid webhook url", False),
    ("wecom", 45009, "api freq out of limit", True),
])
def test_robot_errcode(kind, errcode, errmsg, retry):
    with http_server(200, {"errcode": errcode, "errmsg": errmsg}) as srv:
        result = send(receiver(kind, srv.url), notification(channel=kind))
    assert (result.ok, result.code, result.retry) == (False, 200, retry)
    assert errmsg in result.error and str(errcode) in result.error and kind in result.error
    assert "s3cret" not in result.error  # the robot's token stays out of logs


def test_robot_answer_that_is_not_a_robot():
    with http_server(200, b"<html>portal</html>") as srv:
        result = send(receiver("dingtalk", srv.url), notification())
    assert (result.ok, result.code, result.retry) == (False, 200, True)
    assert "errcode" in result.error


def test_wecom_long_text_is_cut_visibly():
    long_text = "\n".join(f"第 {i} 条证据：抽样编号 DC24330110{i:03d}，铜绿假单胞菌检出。" for i in range(300))
    with http_server(200, {"errcode": 0, "errmsg": "ok"}) as srv:
        result = send(receiver("wecom", srv.url), notification(text_zh=long_text))
    assert result.ok
    content = srv.seen[0].json()["markdown"]["content"]
    assert len(content.encode("utf-8")) <= WECOM_MAX_BYTES
    assert "已截断" in content and "AL-E-330110-001-sampling.unqualified" in content


def test_dingtalk_signed_robot(monkeypatch):
    # 加签: the robot recomputes HMAC-SHA256(secret, "<timestamp>\n<secret>") and refuses a mismatch
    import base64
    import hashlib
    import hmac
    import time
    from urllib.parse import parse_qs, urlsplit
    secret = "SECd41d8cd98f00b204e9800998ecf8427e"
    monkeypatch.setenv("QRISK_DING_DUTY_SECRET", secret)
    with http_server(200, {"errcode": 0, "errmsg": "ok"}) as srv:
        signed = Receiver(name="duty-ding", kind="dingtalk", url=srv.url, secret_env="QRISK_DING_DUTY_SECRET")
        before = int(time.time() * 1000)
        result = send(signed, notification(channel="dingtalk"))
        after = int(time.time() * 1000)
    assert result == SendResult(ok=True, code=200)
    [req] = srv.seen
    query = parse_qs(urlsplit(req.path).query)
    assert query["token"] == ["s3cret"]  # the robot's own token is kept
    timestamp = int(query["timestamp"][0])
    assert before <= timestamp <= after
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()).decode()
    assert query["sign"] == [expected]


def test_dingtalk_signing_secret_missing(monkeypatch):
    monkeypatch.delenv("QRISK_DING_DUTY_SECRET", raising=False)
    with http_server(200, {"errcode": 0, "errmsg": "ok"}) as srv:
        signed = Receiver(name="duty-ding", kind="dingtalk", url=srv.url, secret_env="QRISK_DING_DUTY_SECRET")
        result = send(signed, notification(channel="dingtalk"))
    assert (result.ok, result.retry) == (False, True)  # delivered once the variable is set, within the attempts
    assert "QRISK_DING_DUTY_SECRET" in result.error and "未设置" in result.error
    assert "s3cret" not in result.error
    assert srv.seen == []  # an unsigned message would only be refused


def test_signing_secret_is_for_dingtalk_only():
    with pytest.raises(ValueError, match="secret_env"):
        Receiver(name="hook", kind="webhook", url="http://127.0.0.1:9/h", secret_env="QRISK_X")
    with pytest.raises(ValueError, match="secret_env"):
        Receiver(name="ding", kind="dingtalk", url="http://127.0.0.1:9/h", secret_env="not a name")


@pytest.mark.parametrize("kind", ["webhook", "dingtalk", "wecom"])
def test_an_address_with_user_and_password_is_refused_by_the_policy(kind):
    # urllib would look "qrisk:pw@127.0.0.1" up as a host name: nothing could ever be delivered
    for url in (f"http://qrisk:pw0rd@127.0.0.1:{free_port()}/h?access_token=x", "https://qrisk@oapi.dingtalk.com/robot/send"):
        with pytest.raises(ValueError, match=r"alerts\.receivers\[duty\]\.url: 地址中不能含用户名和密码（user:password@）") as refused:
            Receiver(name="duty", kind=kind, url=url)
        assert "pw0rd" not in str(refused.value).split("input_value")[0]
    # an "@" after the host is the receiver's business
    assert Receiver(name="duty", kind=kind, url="https://hooks.example/a@b?to=x@y").url


def test_a_malformed_robot_address_does_not_leak_its_token():
    bad = Receiver(name="ding", kind="dingtalk", url="http://127.0.0.1:9/robot/send?access_token=s3cret bad")
    result = send(bad, notification(channel="dingtalk"))
    assert (result.ok, result.retry) == (False, False)
    assert "s3cret" not in result.error and "bad address" in result.error


# --------------------------------------------------------------------------- what errors may say


def _origin(srv: Http) -> str:
    return srv.url.split("/hooks")[0]


@pytest.mark.parametrize("kind, path, token", [
    ("webhook", "/open-apis/bot/v2/hook/2b6f3c1e-8a4d-4f7b-9c2e-5d1a0e7f3b94", "2b6f3c1e-8a4d-4f7b-9c2e-5d1a0e7f3b94"),  # Feishu
    ("webhook", "/services/T0A1B2C3D/B04E5F6G7/kqZrxVbNmWpLsTyHcQdfJgUe", "kqZrxVbNmWpLsTyHcQdfJgUe"),  # Slack (no digit in it)
    ("wecom", "/cgi-bin/webhook/send/693a91f6-7b2c-4bc4-97a0-0ec2d1fa5aaa", "693a91f6-7b2c-4bc4-97a0-0ec2d1fa5aaa"),
])
def test_a_token_in_the_path_stays_out_of_the_error(kind, path, token):
    """A 500 whose body quotes the address it was called at, the path and the whole URL: the error names
    the receiver, the host and the status, and holds neither the token nor the path."""
    def echo(called: str) -> bytes:
        return (f"<html>502 upstream error for POST {called} (url {origin}{called}; "
                f"path {called.replace('/', '%2F')}; hook {called.rsplit('/', 1)[1]})</html>").encode()

    with http_server(500, echo) as srv:
        origin = _origin(srv)
        hook = Receiver(name="duty-hook", kind=kind, url=origin + path)
        result = send(hook, notification(channel=kind))
    assert srv.seen and srv.seen[0].path == path  # (the server did echo what it was called at)
    assert (result.ok, result.code, result.retry) == (False, 500, True)
    assert result.error.startswith(f"{kind} receiver duty-hook ({origin}/…): HTTP 500 Internal Server Error: <html>502 upstream error")
    assert token not in result.error and path not in result.error and path.replace("/", "%2F") not in result.error
    assert token.split("-")[0] not in result.error
    for segment in path.split("/")[1:-1]:  # the route's own words may stay, the ids beside them may not
        assert len(segment) < 6 or not any(c.isdigit() for c in segment) or segment not in result.error


def test_a_remotes_foreign_token_is_masked_its_words_kept():
    body = b'{"error": "AuthenticationFailed", "detail": "gateway session 9f8e7d6c5b4a39281706f5e4d3c2b1a0 expired", "id": "x" }'
    with http_server(401, body) as srv:
        result = send(receiver("webhook", srv.url), notification())
    assert (result.ok, result.code, result.retry) == (False, 401, False)
    assert "9f8e7d6c5b4a" not in result.error and "gateway session *** expired" in result.error
    assert "AuthenticationFailed" in result.error  # (a word, not a token: what the operator needs to read)


def test_a_long_answer_is_cut_after_its_secrets_are_out():
    token = "Zx81" * 20  # across the 200th character: cut first, its first 14 characters would be too short to mask
    with http_server(503, ("x " * 93 + token + " " + "y " * 200).encode()) as srv:
        result = send(receiver("webhook", srv.url), notification())
    assert result.code == 503 and "Zx81Zx81" not in result.error and "x x *** y y" in result.error
    assert result.error.endswith("y …")  # (cut, and saying so)


def test_an_email_error_holds_no_recipient_address():
    handler = Recorder(rcpt_reply={"duty-desk@bureau.example": "550 5.1.1 <duty-desk@bureau.example>: Recipient address rejected: "
                                                              "User unknown in virtual mailbox table"})
    with smtp_server(handler) as cfg:
        partly = send(EMAIL, notification(), smtp=cfg)
    with smtp_server(Recorder(data_reply="554 5.7.1 <Zhang.Wei@Bureau.example>: Relay access denied")) as cfg:
        refused = send(EMAIL, notification(), smtp=cfg)
    assert (partly.ok, partly.code) == (False, 550) and (refused.ok, refused.code) == (False, 554)
    assert "recipient #2 550 5.1.1 <recipient #2>: Recipient address rejected: User unknown" in partly.error
    assert "554 5.7.1 <recipient #1>: Relay access denied" in refused.error  # (an address echoed in another case too)
    for error in (partly.error, refused.error):
        assert error.startswith("email receiver county-desk via SMTP 127.0.0.1:") and "@" not in error
        assert not any(name in error.lower() for name in ("zhang.wei", "duty-desk"))


# --------------------------------------------------------------------------- robot markdown: what others wrote stays text

LAB = "[x](http://127.0.0.1:9/p) ![t](http://127.0.0.1:9/t.png)"
PRODUCT = "**特供**饮用水"
HOSTILE_TEXT = (f"清溪桶装水厂：{PRODUCT}（抽样编号 DC24330110001）抽检不合格，检验机构：{LAB}。\n"
                "#### 请立即登录核实\n"
                "> 引用 <font color=\"warning\">红字</font> <@all> ~~删除~~ `code` | 表格 | _斜体_\n"
                "1. 不是列表\n"
                "- 也不是列表\n"
                "===\n"
                "反斜杠 \\[ 和实体 &lt;b&gt; 照原样\n"
                "余氯(游离氯) 6.5~8.5 mg/L，1#灌装线，限量!")  # (common in the texts, harmless where they stand)


def _unescape(markdown: str) -> str:
    import re
    return re.sub(r"\\(.)", r"\1", markdown).replace("&lt;", "<").replace("&amp;", "&")


@pytest.mark.parametrize("kind", ["dingtalk", "wecom"])
def test_robot_markdown_shows_what_others_wrote_as_text(kind):
    """Lab and product names (from the labs' keys) and complaint excerpts (the public's) go into a duty
    group's robot message: no link, image, bold, heading, quote, list, HTML or mention of theirs renders."""
    from markdown_it import MarkdownIt

    subject = f"【预警·高】{PRODUCT} 抽检不合格"
    with http_server(200, {"errcode": 0, "errmsg": "ok"}) as srv:
        result = send(receiver(kind, srv.url), notification(channel=kind, subject_zh=subject, text_zh=HOSTILE_TEXT))
    assert result.ok
    body = srv.seen[0].json()
    text = body["markdown"]["text" if kind == "dingtalk" else "content"]
    if kind == "dingtalk":
        assert body["markdown"]["title"] == subject  # (the chat list's plain text: not rendered)
    heading, _, rest = text.partition("\n\n")
    assert heading == r"#### 【预警·高】\*\*特供\*\*饮用水 抽检不合格"  # the message's own heading stays markdown
    # every character kept: unescaped, the lines are what was written
    assert [_unescape(line) for line in rest.split("\n") if line] == [line for line in HOSTILE_TEXT.split("\n")]
    assert "<" not in text and "](" not in text and "**" not in text and "![" not in text
    assert text.endswith("\n余氯(游离氯) 6.5~8.5 mg/L，1#灌装线，限量!")  # left as written: nothing to escape there
    assert not [line for line in text.split("\n")[1:] if line.startswith(("#", ">", "- ", "1.", "="))]

    # and as a CommonMark renderer (tables and strikethrough on, as markdown_v2 has them) shows it
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(text)
    assert html.startswith("<h4>【预警·高】**特供**饮用水 抽检不合格</h4>")
    for tag in ("<a ", "<img", "<strong", "<em", "<h1", "<h2", "<h3", "<blockquote", "<ol", "<ul", "<li", "<table", "<s>", "<del",
                "<code", "<hr", "<font"):
        assert tag not in html, (tag, html)
    assert html.count("<h4>") == 1
    assert "[x](http://127.0.0.1:9/p) ![t](http://127.0.0.1:9/t.png)" in html and "**特供**饮用水" in html
    assert "&lt;font color=&quot;warning&quot;&gt;红字&lt;/font&gt; &lt;@all&gt;" in html
    assert "反斜杠 \\[ 和实体 &amp;lt;b&amp;gt; 照原样" in html


def test_a_line_starting_with_a_number_or_a_sign_is_not_taken_for_markdown():
    """Only what markdown reads as a marker is escaped at a line's start (a list item's "1. " or "- ",
    a heading's "# ", a quote's ">"): a measured value there stays as written, with no stray backslash."""
    from alerts.receivers import markdown_text

    for text in ("6.5~8.5", "0.3 g/kg", "-5℃", "+2 ℃", "#1灌装线", "1#灌装线", "2026-03-05 抽检"):
        assert markdown_text(text) == text
    assert markdown_text("1. 点此") == "1\\. 点此" and markdown_text("- 项") == "\\- 项"
    assert markdown_text("# 标题") == "\\# 标题" and markdown_text(">5") == "\\>5" and markdown_text("---") == "\\---"
