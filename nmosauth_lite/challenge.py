"""What a resource server tells a client, read without I/O (MicroPython-compatible).

RFC 6750 §3 Bearer challenges in `WWW-Authenticate` (read leniently, as a client should:
IS-10 CL-31, CL-41), what the client does about a 400/401/403/503 (BCP-003-02 §10), and
`Retry-After` (RFC 9110 §10.2.3) in either form. `read_quoted` is the one quoted-string
reader, shared with the probe's strict parser (probe.challenge).
"""

MAX_CHALLENGE = 4096  # one WWW-Authenticate value
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def read_quoted(value, i):
    """The quoted-string opening at value[i] (RFC 9110 §5.6.4): (its text with quoted-pairs
    undone, the index after the closing quote), or (the text, -1) when it is not closed. Shared
    by this lenient client reading and the probe's strict one (probe.challenge)."""
    n = len(value)
    i += 1
    chars = []
    while i < n and value[i] != '"':
        if value[i] == "\\" and i + 1 < n:
            i += 1
        chars.append(value[i])
        i += 1
    return "".join(chars), (i + 1 if i < n else -1)


def parse_www_authenticate(value):
    """The Bearer challenge's parameters (RFC 6750 §3, RFC 7235 §2.1) as {lowercased name: value},
    or None without one. Quoted and unquoted values; several challenges in one value."""
    if not value or len(value) > MAX_CHALLENGE:
        return None
    pos, n = 0, len(value)
    current = bearer = None
    after_scheme = False  # a token68 may follow a scheme directly (e.g. Basic's)
    while pos < n:
        if value[pos] in " \t,":
            after_scheme = after_scheme and value[pos] != ","
            pos += 1
            continue
        start = pos
        while pos < n and value[pos] not in " \t,=":
            pos += 1
        word = value[start:pos]
        eq = pos
        while eq < n and value[eq] in " \t":
            eq += 1
        is_param = current is not None and eq + 1 < n and value[eq] == "=" and value[eq + 1] != "="
        if not word or (after_scheme and not is_param):
            while pos < n and value[pos] != ",":  # token68 or junk: skip to the next comma
                pos += 1
            continue
        if not is_param:  # a new challenge
            if bearer is not None:
                break
            current = {}
            if word.lower() == "bearer":
                bearer = current
            after_scheme = True
            continue
        pos = eq + 1
        while pos < n and value[pos] in " \t":
            pos += 1
        if pos < n and value[pos] == '"':
            v, pos = read_quoted(value, pos)
            if pos < 0:  # not closed: what there is, to the end
                pos = n
        else:
            start = pos
            while pos < n and value[pos] not in ", \t":
                pos += 1
            v = value[start:pos]
        current[word.lower()] = v
        after_scheme = False
    return bearer


def resource_error(status, www_authenticate):
    """What a client does about a resource server's answer (IS-10 CL-41, BCP-003-02 §10):
    "retry" (401: new token, then once more), "scope" (403 insufficient_scope: report, never
    retry), "request" (400: a client bug), "later" (503), or None (not an auth problem)."""
    params = parse_www_authenticate(www_authenticate) or {}
    err = params.get("error")
    if status == 401:
        return "retry"
    if status == 403 and (err == "insufficient_scope" or www_authenticate):
        return "scope"
    if status == 400 and err == "invalid_request":
        return "request"
    if status == 503:
        return "later"
    return None


def _days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def parse_retry_after(value, now):
    """Retry-After (RFC 9110 §10.2.3): delay-seconds or an IMF-fixdate -> seconds >= 0, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit() and len(value) <= 9:
        return int(value)
    parts = value.split()  # Sun, 06 Nov 1994 08:49:37 GMT
    if len(parts) != 6 or parts[5] != "GMT" or parts[2] not in _MONTHS:
        return None
    hms = parts[4].split(":")
    try:
        day, year = int(parts[1]), int(parts[3])
        h, mi, s = int(hms[0]), int(hms[1]), int(hms[2])
    except (ValueError, IndexError):
        return None
    at = _days_from_civil(year, _MONTHS.index(parts[2]) + 1, day) * 86400 + h * 3600 + mi * 60 + s
    return max(0, int(at - now))
