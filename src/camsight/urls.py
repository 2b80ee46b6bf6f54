"""Camera and notifier URLs: credentials in, credentials out, and nothing secret in what is shown.

Part of the bottom layer: it imports nothing of camsight's, so the config,
its editor, the sources and the API all use the same rules.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import quote, unquote, urlsplit

SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)(.*)$", re.S)
# The credentials end at the last "@" that is followed by a host (no "@", "/",
# "?" or "#"): a password may contain "@" or "/" unquoted.
_USERINFO = re.compile(r"^(.*)@([^@/?#]*)(.*)$", re.S)
_SECRET_PARAM = re.compile(
    r"([?&;](?:password|passwd|pass|pwd|psw|secret|token|key|apikey|api_key|auth|sig|signature)=)([^&;#]*)",
    re.I,
)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (the user name stays).

    Query parameters that carry secrets (``password=``, ``pwd=``, ``token=``...)
    are hidden too. When in doubt it hides more rather than less.

    >>> redact_url("rtsp://admin:s3cr%40t@10.0.0.5:554/stream1")
    'rtsp://admin:***@10.0.0.5:554/stream1'
    >>> redact_url("rtsp://admin:p@ss/w@cam/live")
    'rtsp://admin:***@cam/live'
    >>> redact_url("http://cam/video.cgi?user=admin&pwd=1234")
    'http://cam/video.cgi?user=admin&pwd=***'
    >>> redact_url("/srv/videos/gate.mp4")
    '/srv/videos/gate.mp4'
    """
    match = SCHEME.match(url)
    if match is None:
        return url
    scheme, rest = match.groups()
    creds = _USERINFO.match(rest)
    if creds is not None:
        userinfo, host, tail = creds.groups()
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            rest = f"{user}:***@{host}{tail}"
    return scheme + _SECRET_PARAM.sub(r"\1***", rest)


_NOTIFIER_PART = re.compile(r"([/@:])")


def _tokenish(part: str) -> bool:
    # Hosts, user names, topics and e-mail addresses stay readable; bot tokens and webhook keys do not.
    has_digit, has_alpha = any(c.isdigit() for c in part), any(c.isalpha() for c in part)
    return len(part) >= 24 or (len(part) >= 12 and has_digit and has_alpha)


def redact_notifier_url(url: str) -> str:
    """A notifier (apprise) URL fit to show: passwords, secret query values and token-like parts hidden.

    Many services carry their token in the path or host (``tgram://<bot token>/<chat>``), so every
    long part that mixes letters and digits is hidden too; ``{secret}`` (filled from the
    environment) stays.

    >>> redact_notifier_url("mailtos://alerts:{secret}@smtp.example.org?to=ops@example.org")
    'mailtos://alerts:{secret}@smtp.example.org?to=ops@example.org'
    >>> redact_notifier_url("tgram://123456789:AAEhBP0av28tkfpzK5ZmkQx1b2c3/4711?pass=x")
    'tgram://123456789:***/4711?pass=***'
    """
    match = SCHEME.match(url)
    if match is None:
        return url
    scheme, rest = match.groups()
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if at and ":" in userinfo and not userinfo.endswith(":{secret}"):
        rest = f"{userinfo.split(':', 1)[0]}:***@{host}{rest[end:]}"
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    head, tail = rest[:cut], rest[cut:]
    parts = _NOTIFIER_PART.split(head)
    head = "".join(p if p in "/@:" or p in ("{secret}", "***") or not _tokenish(p) else "***" for p in parts)
    return scheme + _SECRET_PARAM.sub(r"\1***", head + tail)


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """``url`` with ``username``/``password`` inserted (URL-quoted), replacing any it had.

    A ``None`` keeps what the URL already has; local paths are returned unchanged.

    >>> with_credentials("rtsp://10.0.0.5/live", "admin", "p@ss:w/rd")
    'rtsp://admin:p%40ss%3Aw%2Frd@10.0.0.5/live'
    >>> with_credentials("rtsp://old:pw@cam/live", "new", None)
    'rtsp://new:pw@cam/live'
    """
    match = SCHEME.match(url)
    if match is None or (username is None and password is None):
        return url
    scheme, rest = match.groups()
    old_user = old_password = None
    creds = _USERINFO.match(rest)
    if creds is not None and "/" not in creds.group(1):
        userinfo, host, tail = creds.groups()
        old_user, _, old_password = userinfo.partition(":")
        old_password = old_password if ":" in userinfo else None
        rest = host + tail
    user = quote(username, safe="") if username is not None else old_user or ""
    secret = quote(password, safe="") if password is not None else old_password
    userinfo = user if secret is None else f"{user}:{secret}"
    return f"{scheme}{userinfo}@{rest}"


def url_secrets(url: str) -> list[str]:
    """The literal secrets in ``url`` (quoted and unquoted), longest first, for scrubbing."""
    found: set[str] = set()
    match = SCHEME.match(url)
    if match is not None:
        creds = _USERINFO.match(match.group(2))
        if creds is not None and ":" in creds.group(1):
            found.add(creds.group(1).split(":", 1)[1])
        found.update(m.group(2) for m in _SECRET_PARAM.finditer(url))
    found |= {unquote(s) for s in found} | {quote(s, safe="") for s in found}
    return sorted((s for s in found if len(s) >= 2), key=len, reverse=True)


def is_network(url: str) -> bool:
    """Whether ``url`` names a network stream (any scheme but ``file://``), not a local path."""
    return SCHEME.match(url) is not None and not url.lower().startswith("file://")


def _as_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address, in every spelling the resolver accepts (``2852039166``, ``0xa9.254.1``)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        # inet_aton reads the short and numeric IPv4 forms getaddrinfo (and so FFmpeg) accepts.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _hosts(url: str) -> set[str]:
    """The host(s) ``url`` may connect to: FFmpeg's reading (authority up to the first ``/``) and ours."""
    hosts: set[str] = set()
    try:
        name = urlsplit(url).hostname
    except ValueError:
        name = None
    if name:
        hosts.add(name)
    match = SCHEME.match(url)
    if match is not None:
        creds = _USERINFO.match(match.group(2))
        authority = creds.group(2) if creds is not None else re.split(r"[/?#]", match.group(2), maxsplit=1)[0]
        if authority.startswith("[") and "]" in authority:
            hosts.add(authority[1 : authority.index("]")])
        elif authority:
            hosts.add(authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority)
    return {unquote(h).strip().lower() for h in hosts if h}


def link_local(url: str) -> bool:
    """Whether network ``url`` names a link-local address (169.254.0.0/16, fe80::/10) as its host.

    Such addresses reach the machine's own neighbourhood, such as a cloud's
    metadata service; names are not resolved (a camera may be offline).

    >>> link_local("http://169.254.169.254/latest"), link_local("rtsp://[fe80::1%25eth0]/live")
    (True, True)
    >>> link_local("http://2852039166/"), link_local("rtsp://10.0.0.5/live")
    (True, False)
    """
    for host in _hosts(url):
        address = _as_address(host.split("%", 1)[0])
        if address is None:
            continue
        mapped = getattr(address, "ipv4_mapped", None)
        if address.is_link_local or (mapped is not None and mapped.is_link_local):
            return True
    return False
