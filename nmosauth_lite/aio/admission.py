"""The admission policy shared by `protect`, `attach` and the AS (issue 23): who may hold a scarce slot.

Addresses are cheap inside a prefix, so clients are counted by address group: IPv4 /32 (or,
configurably, /24) and IPv6 /64. Every scarce table (connection slots, pending authorizations,
pending registrations, login checks) is a FairTable: a global ceiling, at most `per_group`
entries per group, and when the table is full a newcomer displaces the oldest (or slowest)
evictable entry of a group holding more than its own group, so a flood displaces itself and
never the legitimate newcomer. Pure bookkeeping: no sockets, no clock (`now` comes in).
"""

import ipaddress

DEFAULT_V4_PREFIX = 32
DEFAULT_V6_PREFIX = 64  # RFC 4291 §2.5.4: one /64 is one link; a host gets as many addresses as it likes
PER_GROUP_SHARE = 8  # default per-group cap: capacity // 8 (at least MIN_PER_GROUP)
MIN_PER_GROUP = 4
MAX_GROUP_CACHE = 4096  # address -> group strings remembered


class Grouping:
    """`group(host)` -> the key its table entries are counted under (a str)."""

    def __init__(self, v4_prefix=DEFAULT_V4_PREFIX, v6_prefix=DEFAULT_V6_PREFIX):
        if v4_prefix not in (24, 32):
            raise ValueError("IPv4 address groups are /32 or /24")
        if not 32 <= v6_prefix <= 128:
            raise ValueError("IPv6 address groups are /32 to /128")
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
            g = self._compute(host)
            if len(self._cache) >= MAX_GROUP_CACHE:
                self._cache = {}
            self._cache[host] = g
        return g

    def _compute(self, host):
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])  # a link-local scope id is not an address bit
        except ValueError:
            return str(host)[:64]
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        prefix = self.v4_prefix if ip.version == 4 else self.v6_prefix
        if prefix == ip.max_prefixlen:
            return str(ip)
        return str(ipaddress.ip_network((ip, prefix), strict=False))


DEFAULT_GROUPING = Grouping()


def default_per_group(capacity):
    return max(MIN_PER_GROUP, capacity // PER_GROUP_SHARE)


def _oldest(entry, since):
    return since


class FairTable:
    """Entries (hashable) held per group under a global ceiling `capacity`.

    `admit(entry, group, now, rank=None)` -> (admitted, victim): the caller removes (and closes,
    forgets, answers) the victim it is handed. `rank(entry, since)` -> None for an entry that
    must not be evicted (e.g. a request being answered), else a sort key: smallest goes first.
    """

    def __init__(self, capacity, per_group=None):
        self.capacity = capacity
        self.per_group = default_per_group(capacity) if per_group is None else per_group
        self._groups = {}  # group -> {entry: since}
        self._size = 0

    def __len__(self):
        return self._size

    def __contains__(self, entry):
        return any(entry in held for held in self._groups.values())

    def count(self, group):
        held = self._groups.get(group)
        return len(held) if held else 0

    def groups(self):
        return {g: len(h) for g, h in self._groups.items()}

    def full(self):
        return self._size >= self.capacity

    def add(self, entry, group, now):
        held = self._groups.get(group)
        if held is None:
            held = self._groups[group] = {}
        if entry not in held:
            held[entry] = now
            self._size += 1

    def remove(self, entry, group):
        """Idempotent."""
        held = self._groups.get(group)
        if held is not None and held.pop(entry, None) is not None:
            self._size -= 1
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
        if self._size < self.capacity:
            return None
        margin = mine + 1 if mine else 0
        largest = max(self._groups.values(), key=len)  # the common case, without sorting every group
        if len(largest) > margin:
            v = self._pick(largest, rank)
            if v is not None:
                return v
        for g, held in sorted(self._groups.items(), key=lambda gh: -len(gh[1])):
            if len(held) <= margin:
                break
            v = self._pick(held, rank)
            if v is not None:
                return v
        return self._pick(self._groups.get(group), rank) if mine and own_when_full else None

    @staticmethod
    def _pick(held, rank):
        best, best_key = None, None
        for entry, since in (held or {}).items():
            key = rank(entry, since)
            if key is not None and (best_key is None or key < best_key):
                best, best_key = entry, key
        return best

    def admit(self, entry, group, now, rank=None, own_rank=None, own_when_full=True):
        """-> (True, victim or None) when `entry` is counted in (the caller evicts the victim
        at once), (False, None) when it is refused."""
        victim = None
        if self.count(group) >= self.per_group or self._size >= self.capacity:
            victim = self.victim(group, rank, own_rank, own_when_full)
            if victim is None:
                return False, None
            self.remove(victim, self.group_holding(victim, group))
        self.add(entry, group, now)
        return True, victim

    def group_holding(self, entry, hint=None):
        if hint is not None and entry in self._groups.get(hint, ()):
            return hint
        for g, held in self._groups.items():
            if entry in held:
                return g
        return None
