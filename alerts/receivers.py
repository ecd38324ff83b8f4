"""Receivers: send one notification to one receiver (e-mail, webhook, DingTalk / WeCom group robot).

One call is one attempt.  The outbox keeps the delivery state and decides when to try again; what it
needs from here is how the attempt went and whether another attempt could go differently
(``SendResult.retry``).  ``send`` never raises for a delivery problem, so one broken receiver cannot
stop the others from being told (DESIGN.md 5: nothing lost, nothing silent).
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import http.client
import json
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
import re
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urljoin, urlsplit

from alerts.notification import REASONS_ZH, Notification
from schemas.policy import Receiver

MAX_RESPONSE_BYTES = 64 * 1024
"""A receiver's answer is read up to this size: a robot answers in a few dozen bytes, and a
misconfigured URL pointing at some large page must not fill memory."""

WECOM_MAX_BYTES = 4096  # WeCom rejects longer markdown content outright (errcode 40058)
DINGTALK_MAX_BYTES = 15000  # what DingTalk documents for a bot's group message; a longer one is refused, not shortened

# Robot error codes that mean "not now" rather than "never": system busy, and each platform's rate limit
# (20 messages a minute per robot).  Any other non-zero errcode (bad token, keyword or IP not allowed,
# malformed message) stays wrong however often it is retried.
DINGTALK_RETRYABLE = frozenset({-1, 130101})
WECOM_RETRYABLE = frozenset({-1, 45009})


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "qrisk@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False  # implicit TLS (SMTPS, usually port 465); starttls upgrades a plain connection instead
    timeout: float = 10.0


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def smtp_warning(cfg: SmtpConfig) -> str | None:
    """The start-up warning for an SMTP login without TLS to another host: the password (AUTH PLAIN/LOGIN
    is base64, not encryption) crosses the network in clear text, as an API key does over plain HTTP."""
    if not cfg.user or cfg.starttls or cfg.ssl or cfg.host in LOOPBACK_HOSTS:
        return None
    return (f"警告：以用户 {cfg.user} 登录 SMTP 服务器 {cfg.host}:{cfg.port} 未启用 TLS，密码将以明文经过网络（请设置 QRISK_SMTP_STARTTLS=true "
            f"或 QRISK_SMTP_SSL=true）/ warning: SMTP login as {cfg.user} to {cfg.host}:{cfg.port} without TLS: the password crosses "
            "the network in clear text (set QRISK_SMTP_STARTTLS=true, or QRISK_SMTP_SSL=true for port 465)")


@dataclass(frozen=True)
class SendResult:
    ok: bool
    code: int = 0  # HTTP status, SMTP reply code, or 0 when no answer (connection refused, timeout)
    error: str = ""  # empty when ok; else a short reason naming the receiver (kind, policy name, scheme://host:port only)
    retry: bool = True  # False for a permanent refusal: retrying cannot help, a person must change something
    # e-mail refused for some recipients only: the addresses that did accept it (the outbox sends the next attempt
    # to the others alone: retried whole, the accepted got it once per retry, some 150 times over a day)
    accepted: tuple[str, ...] = ()


def send(receiver: Receiver, note: Notification, smtp: SmtpConfig | None = None, timeout: float = 10.0, *,
         recipients: list[str] | None = None) -> SendResult:
    """Send ``note`` to ``receiver`` once (an e-mail receiver's ``recipients`` only, when given: those of its
    ``to`` an earlier attempt did not reach; the message still names them all in To).

    Never raises for a delivery problem: every failure comes back as a ``SendResult``.
    E-mail uses ``smtp`` (its own ``timeout``); the HTTP kinds use ``timeout`` in seconds, for the
    connection, each read, and the whole answer body.
    """
    result = _send(receiver, note, smtp, timeout, recipients)
    if result.error:
        result = dataclasses.replace(result, error=redact_error(result.error, receiver))
    return result


def _send(receiver: Receiver, note: Notification, smtp: SmtpConfig | None, timeout: float,
          recipients: list[str] | None = None) -> SendResult:
    try:
        if receiver.kind == "email":
            return _send_email(receiver, note, smtp or SmtpConfig(), recipients)
        if receiver.kind == "webhook":
            return _send_http(receiver, _webhook_payload(note), timeout, robot=None,
                              headers={"Idempotency-Key": note.delivery_id})
        if receiver.kind == "dingtalk":
            url = _dingtalk_url(receiver)
            if isinstance(url, SendResult):
                return url
            return _send_http(receiver, dingtalk_payload(note), timeout, robot=DINGTALK_RETRYABLE, url=url)
        if receiver.kind == "wecom":
            return _send_http(receiver, wecom_payload(note), timeout, robot=WECOM_RETRYABLE)
        return SendResult(False, error=f"receiver {receiver.name}: unknown kind {receiver.kind!r}", retry=False)
    except Exception as exc:  # noqa: BLE001 - a bug here must not stop the outbox; it is reported, not hidden
        return SendResult(False, error=f"{receiver.kind} receiver {receiver.name}: unexpected {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- message formats


def _webhook_payload(note: Notification) -> dict[str, Any]:
    return {
        "delivery_id": note.delivery_id,
        "alert_id": note.alert_id,
        "enterprise_id": note.enterprise_id,
        "reason": note.reason,
        "reason_zh": REASONS_ZH.get(note.reason, note.reason),
        "subject_zh": note.subject_zh,
        "text_zh": note.text_zh,
        "alert": note.alert,
    }


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _fit(text: str, max_bytes: int, note: Notification) -> str:
    """Cut to the platform's limit, saying so: a robot refuses an over-long message as a whole, and a
    silently shortened one would look complete."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    tail = f"\n\n……（内容过长，已截断；完整内容见 qrisk 预警 {note.alert_id}）"
    budget = max(0, max_bytes - len(tail.encode("utf-8")))
    return raw[:budget].decode("utf-8", "ignore") + tail


# What the robots render.  DingTalk's robot markdown is a documented subset: headings (# to ######),
# > quotes, **bold** and *italic*, [links](…), ![images](…), - and 1. lists, and in practice some HTML
# (<font>).  WeCom's markdown message: headings, **bold**, [links](…), `inline code`, > quotes,
# <font color=…> and <@userid> mentions (its markdown_v2, not used here, adds images, lists, tables).
# Neither documents backslash escapes.  The subject and the text are plain text written from what
# others sent (lab and product names from the labs' keys, the public's complaint excerpts), so what
# either could read as markup is backslash-escaped: \ ` * _ [ ] | everywhere, "(" right after "]"
# (a link's or image's address), "~~", and # > - + = or "1." at a line's start.  A CommonMark-style
# renderer shows the character and drops the backslash; one that ignored escapes would show the
# backslash and still find no link, image, bold or heading, since "\]\(" is not "](" and "\*\*" not
# "**".  "<" is written "&lt;" (no <font>, no <@mention>), an "&" that would start an entity "&amp;".
# Characters common in the texts and harmless where they stand are left alone: "余氯(游离氯)",
# "6.5~8.5", "1#灌装线", "限量!".  Only the message's own markup (its "#### " heading, the breaks
# between paragraphs) stays live.
_MD_INLINE = re.compile(r"[\\`*_\[\]|]|(?<=\])\(|~(?=~)|(?<=~)~")
_MD_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# heading, quote, list item, setext underline: only as markdown reads them (a marker then a space, or a
# line of = or -), so that 6.5~8.5, 0.3 g/kg or -5℃ at a line's start stay as written
_MD_LINE_START = re.compile(r"^([ \t]*)(#(?=#*[ \t]|#*$)|>|[-+*](?=[ \t])|\d+(?=[.)](?:[ \t]|$))|[=-](?=[=-]*[ \t]*$))", re.MULTILINE)


def markdown_text(text: str) -> str:
    """Plain text for a robot's markdown: shown as written, never as a link, an image, bold, a heading or HTML."""
    text = _MD_ENTITY.sub("&amp;", text).replace("<", "&lt;")
    text = _MD_INLINE.sub(lambda m: "\\" + m[0], text)
    return _MD_LINE_START.sub(lambda m: m[1] + m[2] + "\\" if m[2][0].isdigit() else m[1] + "\\" + m[2], text)


def dingtalk_payload(note: Notification) -> dict[str, Any]:
    # DingTalk's markdown joins single-newline lines into one paragraph: a blank line keeps each line its own.
    # (the title is the plain text of the chat list and the notification, not rendered as markdown)
    text = f"#### {markdown_text(note.subject_zh)}\n\n" + "\n\n".join(markdown_text(line) for line in _lines(note.text_zh))
    return {"msgtype": "markdown", "markdown": {"title": note.subject_zh, "text": _fit(text, DINGTALK_MAX_BYTES, note)}}


def wecom_payload(note: Notification) -> dict[str, Any]:
    content = f"#### {markdown_text(note.subject_zh)}\n\n" + "\n".join(markdown_text(line) for line in _lines(note.text_zh))
    return {"msgtype": "markdown", "markdown": {"content": _fit(content, WECOM_MAX_BYTES, note)}}


# --------------------------------------------------------------------------- e-mail


def _email_message(receiver: Receiver, note: Notification, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = " ".join(note.subject_zh.split())  # a line break in a header would be refused
    msg["From"] = sender
    msg["To"] = ", ".join(receiver.to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = f"<{note.delivery_id}@qrisk>"  # the same delivery retried keeps its id: mail systems drop the copy
    msg["X-Qrisk-Alert-Id"] = note.alert_id
    # base64 keeps the body 7-bit clean, so it passes relays that do not offer 8BITMIME
    msg.set_content(note.text_zh, charset="utf-8", cte="base64")
    return msg


def _send_email(receiver: Receiver, note: Notification, cfg: SmtpConfig, recipients: list[str] | None = None) -> SendResult:
    # the receiver by its policy name, not its addresses: errors reach /healthz and the alert's deliveries
    where = f"email receiver {receiver.name} via SMTP {cfg.host}:{cfg.port}"
    try:
        msg = _email_message(receiver, note, cfg.sender)
    except (ValueError, TypeError) as exc:
        return SendResult(False, error=f"{where}: cannot build the message: {exc}", retry=False)
    to = list(recipients) if recipients else list(receiver.to)
    conn: smtplib.SMTP | None = None
    try:
        if cfg.ssl:
            conn = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            if cfg.starttls:
                conn.starttls(context=ssl.create_default_context())
        if cfg.user:
            conn.login(cfg.user, cfg.password or "")
        refused = conn.send_message(msg, from_addr=cfg.sender, to_addrs=to)
    except smtplib.SMTPRecipientsRefused as exc:
        return _refused(where, receiver, exc.recipients, some_accepted=False)
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, authentication failed, bad greeting
        code = max(exc.smtp_code, 0)
        return SendResult(False, code=code, error=f"{where}: {code} {_remote(_text(exc.smtp_error), receiver)}",
                          retry=not 500 <= code < 600)
    except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS / AUTH / SMTPUTF8 offered: the configuration must change
        return SendResult(False, error=f"{where}: {exc}", retry=False)
    except UnicodeError as exc:  # smtplib sends the user name and password as ASCII only
        return SendResult(False, error=f"{where}: SMTP user and password must be ASCII: {exc}", retry=False)
    except (smtplib.SMTPException, OSError) as exc:  # refused connection, timeout, dropped connection, TLS failure
        return SendResult(False, error=f"{where}: {_describe(exc, cfg.timeout)}", retry=True)
    finally:
        if conn is not None:
            _quit(conn)
    if refused:
        gone = {a.lower() for a in refused}
        return _refused(where, receiver, refused, some_accepted=True, accepted=tuple(a for a in to if a.lower() not in gone))
    return SendResult(True, code=250)


def _refused(where: str, receiver: Receiver, recipients: dict[str, tuple[int, bytes]], some_accepted: bool,
             accepted: tuple[str, ...] = ()) -> SendResult:
    """Some accepted, some refused is still a failure: a supervisor who was not told must show up.  Those who
    accepted are in ``accepted``, and a retry mails only the others (the outbox keeps who has it).
    A recipient is named by its place in the receiver's ``to`` list (recipient #2), not its address."""
    codes = {addr: max(code, 0) for addr, (code, _) in recipients.items()}
    temporary = [c for c in codes.values() if not 500 <= c < 600]
    detail = "; ".join(f"{_recipient(receiver, addr)} {codes[addr]} {_remote(_text(msg), receiver)}"
                       for addr, (_, msg) in sorted(recipients.items(), key=lambda kv: _recipient_index(receiver, kv[0])))
    also = " (the other recipients accepted it)" if some_accepted else ""
    code = temporary[0] if temporary else next(iter(codes.values()), 0)
    return SendResult(False, code=code, error=f"{where}: recipients refused: {detail}{also}", retry=bool(temporary),
                      accepted=accepted)


def _quit(conn: smtplib.SMTP) -> None:
    # The message is already accepted or already lost; a failed QUIT must not change the verdict.
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


# --------------------------------------------------------------------------- webhook and robots


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a 301/302 to a POST by sending a GET without the body, and a 2xx to that GET
    # would count as delivered.  A moved receiver is a policy to fix, so the 3xx is reported instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64 of HMAC-SHA256(secret, "<timestamp>\\n<secret>"), URL-encoded.
    The robot refuses a signature more than an hour old (errcode 310000)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


def _dingtalk_url(receiver: Receiver) -> str | SendResult:
    """The robot's address, signed per message when the receiver names a secret."""
    url = receiver.url or ""
    if receiver.secret_env is None:
        return url
    secret = os.environ.get(receiver.secret_env, "").strip()  # (a trailing newline from a secrets file breaks the signature)
    if not secret:
        # nothing sent unsigned (the robot would refuse it); retried, so that setting the
        # variable and restarting delivers what waited, until the attempts run out
        return SendResult(False, retry=True, error=(
            f"{_where(receiver)}: 加签密钥环境变量 {receiver.secret_env} 未设置 / "
            f"the signing secret's environment variable {receiver.secret_env} is not set"))
    timestamp = int(time.time() * 1000)  # (the adapter's clock: a signature is only valid for an hour)
    return f"{url}{'&' if urlsplit(url).query else '?'}timestamp={timestamp}&sign={dingtalk_sign(secret, timestamp)}"


def _send_http(receiver: Receiver, payload: dict[str, Any], timeout: float, robot: frozenset[int] | None,
               headers: dict[str, str] | None = None, url: str | None = None) -> SendResult:
    where = _where(receiver)
    try:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        return SendResult(False, error=f"{where}: cannot encode the notification as JSON: {exc}", retry=False)
    req = urllib.request.Request(url or receiver.url or "", data=data, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "qrisk", **(headers or {})})
    deadline = time.monotonic() + timeout
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status = resp.status
            body = _read_capped(resp, deadline)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            body = _read_capped(exc, deadline)
        except (OSError, http.client.HTTPException):
            body = b""
        finally:
            exc.close()
        if 300 <= status < 400:
            location = exc.headers.get("Location", "") if exc.headers else ""
            moved = display_url(urljoin(receiver.url or "", location)) if location else ""
            return SendResult(False, code=status, retry=False,
                              error=f"{where}: HTTP {status} redirect to {moved or '?'} not followed; put the final address in the policy")
        return SendResult(False, code=status, error=f"{where}: HTTP {status} {_remote(_text(str(exc.reason)), receiver)}"
                                                    f"{_snippet(body, receiver)}",
                          retry=status in (408, 429) or status >= 500)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, BaseException):
            return SendResult(False, error=f"{where}: {_describe(reason, timeout)}", retry=True)
        return SendResult(False, error=f"{where}: {_remote(_text(str(reason)), receiver)}", retry=True)
    except (http.client.InvalidURL, ValueError) as exc:
        # (the exception quotes the whole URL, token and signature included: only its kind is kept)
        return SendResult(False, error=f"{where}: bad address ({type(exc).__name__}); check the receiver's url in the policy", retry=False)
    except (OSError, http.client.HTTPException) as exc:  # timeout while reading, connection dropped mid-answer
        return SendResult(False, error=f"{where}: {_describe(exc, timeout)}", retry=True)
    if robot is None:
        return SendResult(True, code=status)
    return _robot_verdict(where, receiver, status, body, robot)


def _robot_verdict(where: str, receiver: Receiver, status: int, body: bytes, retryable: frozenset[int]) -> SendResult:
    """A robot answers 200 even when it refuses the message; only errcode 0 means the group got it."""
    try:
        answer = json.loads(body.decode("utf-8"))
        errcode = int(answer["errcode"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        # Possibly a gateway's page in between: the message may not have arrived, so try again.
        return SendResult(False, code=status, error=f"{where}: HTTP {status} without a robot answer (errcode){_snippet(body, receiver)}")
    if errcode == 0:
        return SendResult(True, code=status)
    errmsg = _cut(_remote(_text(str(answer.get("errmsg", ""))), receiver))
    return SendResult(False, code=status, error=f"{where}: errcode {errcode}: {errmsg}", retry=errcode in retryable)


def _read_capped(resp: Any, deadline: float) -> bytes:
    # The socket timeout bounds each read; the deadline bounds a server that trickles its answer.
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES:
        if time.monotonic() > deadline:
            raise TimeoutError("the answer took longer than the timeout")
        chunk = resp.read1(min(8192, MAX_RESPONSE_BYTES - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- error text


def display_url(url: str) -> str:
    """A receiver's address as errors show it: ``scheme://host[:port]``, and ``/…`` when there was more.
    Errors reach the deliveries table (GET /v1/alerts/{id}), stderr and /healthz, and a webhook's
    credential is in its path as often as in its query (Feishu ``/open-apis/bot/v2/hook/<token>``, Slack
    ``/services/T…/B…/<secret>``, DingTalk ``?access_token=``, WeCom ``?key=``): path, query and any
    ``user:password@`` are dropped.  The policy name beside it says which receiver it is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(bad address)"
    host = parts.netloc.rpartition("@")[2]
    if not parts.scheme or not host:
        return "(bad address)"
    more = "/…" if parts.path not in ("", "/") or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{host}{more}"


def _where(receiver: Receiver) -> str:
    return f"{receiver.kind} receiver {receiver.name} ({display_url(receiver.url or '')})"


def _recipient_index(receiver: Receiver, address: str) -> int:
    lowered = [a.lower() for a in receiver.to]
    return lowered.index(address.lower()) + 1 if address.lower() in lowered else 0


def _recipient(receiver: Receiver, address: str) -> str:
    """A recipient as errors name it: its place in the receiver's ``to`` list, not the address."""
    i = _recipient_index(receiver, address)
    return f"recipient #{i}" if i else "a recipient"


_QUERY_VALUE = re.compile(r"([?&][^=&\s\"'<>]+=)[^&\s\"'<>]+")
_SHORTEST_SECRET = 6  # shorter values (a timestamp's "1", "true") would blank out unrelated words
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_-]{16,}")
_SNIPPET_CHARS = 200


def _secret_segment(segment: str) -> bool:
    """A path segment that is a credential rather than a route: long (a Feishu hook's UUID, Slack's
    secret), or not that short and with a digit in it (Slack's T…/B… ids); "robot", "send", "webhook",
    "open-apis" and "v2" are routes, kept where the remote's answer names them."""
    return len(segment) >= 16 or (len(segment) >= _SHORTEST_SECRET and any(c.isdigit() for c in segment))


def redact_error(text: str, receiver: Receiver | None = None) -> str:
    """An error as it may be stored and printed: without the receiver's credentials, wherever the remote
    answer or an exception quoted them — its URL (shown as ``display_url`` shows it), its path (``/…``)
    and the path's token-like segments, its query values (DingTalk access_token=, WeCom key=), user and
    password, its signing secret — without its e-mail recipients' addresses (``recipient #2``: errors
    reach the public /healthz), and without the value of any query string in it."""
    if not text:
        return text
    secrets_: set[str] = set()
    if receiver is not None:
        if receiver.url:
            try:
                parts = urlsplit(receiver.url)
                userinfo = (parts.username, parts.password)
            except ValueError:  # (a malformed address: only its text can be looked for)
                parts, userinfo = None, (None, None)
            shown = display_url(receiver.url)
            bare = receiver.url.split("#", 1)[0]
            for whole in sorted({receiver.url, bare, bare.split("?", 1)[0]}, key=len, reverse=True):
                text = text.replace(whole, shown)
            if parts is not None:
                for path in sorted({parts.path, unquote(parts.path)}, key=len, reverse=True):
                    if len(path) >= _SHORTEST_SECRET:
                        text = text.replace(path, "/…")
                secrets_.update(v for _, v in parse_qsl(parts.query, keep_blank_values=True))
                secrets_.update(unquote(seg) for seg in parts.path.split("/") if _secret_segment(unquote(seg)))
                secrets_.update(filter(None, userinfo))
        if receiver.secret_env:
            secrets_.add(os.environ.get(receiver.secret_env, "").strip())
        for i, address in sorted(enumerate(receiver.to, 1), key=lambda ia: len(ia[1]), reverse=True):
            text = re.sub(re.escape(address), f"recipient #{i}", text, flags=re.IGNORECASE)
    for secret in sorted((s for s in secrets_ if len(s) >= _SHORTEST_SECRET), key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, "***")
    return _QUERY_VALUE.sub(r"\1***", text)


def _remote(text: str, receiver: Receiver) -> str:
    """What the remote said (an answer's body, a robot's errmsg, an SMTP reply, a reason phrase), as an
    error may quote it: ``redact_error``'s known secrets out, and then any long token-like run
    (16 or more of ``[A-Za-z0-9_-]`` with a digit, or 32 or more of any) masked, since the remote may
    echo a credential of another kind than the receiver's own (a gateway's session, a new token)."""
    text = redact_error(text, receiver)
    return _TOKEN_RUN.sub(lambda m: "***" if len(m[0]) >= 32 or any(c.isdigit() for c in m[0]) else m[0], text)


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s (timeout)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listening)"
    return f"{type(exc).__name__}: {exc}"


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())


def _cut(text: str, limit: int = _SNIPPET_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _snippet(body: bytes, receiver: Receiver) -> str:
    """The start of a refusing answer, which often says why (a gateway's page, the webhook's own detail),
    without what it may echo of the receiver's address or credentials (``_remote``)."""
    text = _text(body)
    if not text:
        return ""
    return ": " + _cut(_remote(text, receiver))
