"""The admission policy shared by `protect`, `attach` and the AS (issue 23): who may hold a scarce slot.

Addresses are cheap inside a prefix, so clients are counted by address group: IPv4 /32 (or /24)
and IPv6 /64. Every scarce table (connection slots, open sign-in forms, the approval queue) is a
FairTable: a global ceiling, at most `per_group` entries per group, and when full a newcomer
displaces the oldest (or slowest) entry of the group holding the most, so a flood displaces
itself and never the legitimate newcomer. Pure bookkeeping: no sockets, no clock (`now` comes in).
"""

import ipaddress

MIN_PER_GROUP = 4
MAX_GROUP_CACHE = 4096  # address -> group strings remembered


class Grouping:
    """`group(host)` -> the key a client's entries are counted under (a str)."""

    def __init__(self, v4_prefix=32, v6_prefix=64):  # RFC 4291 §2.5.4: a /64 is one link
        if v4_prefix not in (24, 32) or not 32 <= v6_prefix <= 128:
            raise ValueError("address groups are IPv4 /32 or /24 and IPv6 /32 to /128")
        self.v4_prefix = v4_prefix
        self.v6_prefix = v6_prefix
        self._cache = {}

    def group(self, host):
        if host is None:
            return "-"
        if self.v4_prefix == 32 and ":" not in host:
            return host  # the common case, no parsing
        g = self._cache.get(host)
        if g is None:
            if len(self._cache) >= MAX_GROUP_CACHE:
                self._cache = {}
            g = self._cache[host] = self._compute(host)
        return g

    def _compute(self, host):
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])  # a scope id is no address bit
        except ValueError:
            return host[:64]
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        prefix = self.v4_prefix if ip.version == 4 else self.v6_prefix
        if prefix == ip.max_prefixlen:
            return str(ip)
        return str(ipaddress.ip_network((ip, prefix), strict=False))


DEFAULT_GROUPING = Grouping()


def default_per_group(capacity):
    return max(MIN_PER_GROUP, capacity // 8)


def _oldest(entry, since):
    return since


class FairTable:
    """Entries (hashable) held per group under a global ceiling `capacity`.

    `admit(entry, group, now)` -> (admitted, victim): the caller closes or forgets the victim
    it is handed (already removed here). `rank(entry, since)` -> None for an entry that must
    not be evicted (e.g. a request being answered), else a sort key: smallest goes first.
    """

    def __init__(self, capacity, per_group=None):
        self.capacity = capacity
        self.per_group = default_per_group(capacity) if per_group is None else per_group
        self._groups = {}  # group -> {entry: since}
        self._where = {}  # entry -> group

    def __len__(self):
        return len(self._where)

    def count(self, group):
        held = self._groups.get(group)
        return len(held) if held else 0

    def full(self):
        return len(self._where) >= self.capacity

    def add(self, entry, group, now):
        if entry not in self._where:
            self._groups.setdefault(group, {})[entry] = now
            self._where[entry] = group

    def remove(self, entry, group=None):
        """Idempotent."""
        group = self._where.pop(entry, None)
        if group is not None:
            held = self._groups[group]
            del held[entry]
            if not held:
                del self._groups[group]

    def victim(self, group, rank=None, own_rank=None, own_when_full=True):
        """Who makes room for a newcomer of `group`, or None (the newcomer is refused).

        At its group's cap: one of the group's own entries (ranked by `own_rank`, default
        `rank`). Table full: an entry of the largest group that would still hold at least as
        many as the newcomer's group afterwards (so two floods never just trade places), else
        (with `own_when_full`) one of the newcomer's own group's entries.
        """
        rank = rank or _oldest
        mine = self.count(group)
        if mine >= self.per_group:
            return self._pick(self._groups.get(group), own_rank or rank)
        if not self.full():
            return None
        margin = mine + 1 if mine else 0
        largest = max(self._groups.values(), key=len)  # the common case, without sorting every group
        v = self._pick(largest, rank) if len(largest) > margin else None
        if v is None:
            for held in sorted(self._groups.values(), key=len, reverse=True):
                if len(held) <= margin:
                    break
                v = self._pick(held, rank)
                if v is not None:
                    return v
        if v is None and mine and own_when_full:
            v = self._pick(self._groups.get(group), rank)
        return v

    @staticmethod
    def _pick(held, rank):
        best, best_key = None, None
        for entry, since in (held or {}).items():
            key = rank(entry, since)
            if key is not None and (best_key is None or key < best_key):
                best, best_key = entry, key
        return best

    def admit(self, entry, group, now, rank=None, own_rank=None, own_when_full=True):
        """-> (True, victim or None) when `entry` is counted in, (False, None) when refused."""
        victim = None
        if self.count(group) >= self.per_group or self.full():
            victim = self.victim(group, rank, own_rank, own_when_full)
            if victim is None:
                return False, None
            self.remove(victim)
        self.add(entry, group, now)
        return True, victim
