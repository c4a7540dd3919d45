"""Client secrets encrypted at rest with a key kept outside the state directory (IS-10 CL-18).

What this protects against: a copy of the state directory alone (a backup, an SD-card or
firmware image dump, a support bundle, a directory shared by mistake) reveals no client
secret, registration access token or signing key, and tampering with it is detected.
What it does not protect against: anyone who can read both the state directory and the
key file (root on the running device, a full-disk image holding both). It is a separation
of duties, not a hardware key store; put the key file on separate storage (e.g. systemd
`LoadCredential=`, a TPM-sealed or read-only partition) to make it count.

Construction (stdlib only, no `cryptography` needed): a 32-byte master key; two sub-keys
derived with HMAC-SHA256 (one to encrypt, one to authenticate); HMAC-SHA256 in counter
mode over a random 16-byte nonce as the keystream (HMAC is a PRF, so this is a standard
PRF-CTR stream cipher); encrypt-then-MAC with an HMAC-SHA256 tag over a version byte,
length-prefixed associated data (the issuer and field name, so a ciphertext cannot be
moved to another record), the nonce and the ciphertext; the tag is checked in constant
time before anything is decrypted. Text form: "v1." + base64url(nonce, ciphertext, tag).
"""

import hashlib
import hmac
import os
import secrets

from ... import b64url
from ...errors import ConfigError, MalformedTokenError
from ..files import atomic_write, ensure_private_dir, read_limited

KEY_BYTES = 32
NONCE_BYTES = 16
TAG_BYTES = 32
MAX_PLAINTEXT = 1 << 16  # secrets, tokens and a PEM key are a few KiB
PREFIX = "v1."


class SecretBoxError(ConfigError):
    """A stored secret cannot be decrypted: wrong or missing key, or the record was altered."""


def _keystream(key, nonce, length):
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hmac.new(key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
        counter += 1
    return bytes(out[:length])


def _mac_input(aad, nonce, ciphertext):
    aad = aad.encode("utf-8")
    return b"\x01" + len(aad).to_bytes(4, "big") + aad + nonce + ciphertext


class SecretBox:
    def __init__(self, master_key):
        if len(master_key) != KEY_BYTES:
            raise ConfigError("credential key must be %d bytes" % KEY_BYTES)
        self._enc = hmac.new(master_key, b"nmosauth-lite secretbox v1 encryption", hashlib.sha256).digest()
        self._mac = hmac.new(master_key, b"nmosauth-lite secretbox v1 authentication", hashlib.sha256).digest()

    def seal(self, plaintext, aad):
        """Encrypt text (str) bound to `aad` (str); returns the text form."""
        data = plaintext.encode("utf-8")
        if len(data) > MAX_PLAINTEXT:
            raise ValueError("secret too large")
        nonce = secrets.token_bytes(NONCE_BYTES)
        ct = bytes(a ^ b for a, b in zip(data, _keystream(self._enc, nonce, len(data))))
        tag = hmac.new(self._mac, _mac_input(aad, nonce, ct), hashlib.sha256).digest()
        return PREFIX + b64url.encode(nonce + ct + tag)

    def open(self, sealed, aad):
        """Decrypt the text form; SecretBoxError when the key is wrong or anything was altered."""
        if not isinstance(sealed, str) or not sealed.startswith(PREFIX) or len(sealed) > 2 * MAX_PLAINTEXT:
            raise SecretBoxError("stored secret is not in the v1 format")
        try:
            raw = b64url.decode(sealed[len(PREFIX):])
        except MalformedTokenError:
            raise SecretBoxError("stored secret is not base64url")
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise SecretBoxError("stored secret is truncated")
        nonce, ct, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES:-TAG_BYTES], raw[-TAG_BYTES:]
        want = hmac.new(self._mac, _mac_input(aad, nonce, ct), hashlib.sha256).digest()
        if not hmac.compare_digest(tag, want):
            raise SecretBoxError("stored secret fails its integrity check (wrong credential key, "
                                 "or the file was altered)")
        data = bytes(a ^ b for a, b in zip(ct, _keystream(self._enc, nonce, len(ct))))
        return data.decode("utf-8")


KEY_BESIDE_SUFFIX = "-client-credentials.key"


def default_key_file(state_dir=None):
    """$CREDENTIALS_DIRECTORY/nmosauth-lite-client.key (systemd LoadCredential); else, for a
    state directory chosen by the operator (--state-dir DIR), DIR-client-credentials.key beside
    it, so a scratch directory never reaches /etc or $HOME (issue 22 item 8); else
    /etc/nmosauth-lite/client-credentials.key as root, else ~/.config/nmosauth-lite/...:
    never under the state directory."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds:
        return os.path.join(creds, "nmosauth-lite-client.key")
    if state_dir:
        return os.path.abspath(state_dir).rstrip(os.sep) + KEY_BESIDE_SUFFIX
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/etc/nmosauth-lite/client-credentials.key"
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "nmosauth-lite", "client-credentials.key")


def _inside(path, directory):
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def load_key(key_file, state_dir, create):
    """The SecretBox for `key_file`, made (32 random bytes, 0600, parent 0700) when `create`.

    Refuses a key file inside the state directory: kept together they protect nothing.
    """
    if _inside(key_file, state_dir):
        raise ConfigError("credential key file %s must not be inside the state directory %s"
                          % (key_file, state_dir))
    try:
        raw = read_limited(key_file, 1024)
    except FileNotFoundError:
        if not create:
            raise SecretBoxError("credential key file %s is missing: stored client secrets cannot be "
                                 "decrypted (restore it, or delete the stored registration to register "
                                 "again)" % key_file)
        ensure_private_dir(os.path.dirname(os.path.abspath(key_file)))
        key = secrets.token_bytes(KEY_BYTES)
        atomic_write(key_file, (b64url.encode(key) + "\n").encode("ascii"), mode=0o600)
        return SecretBox(key)
    except (OSError, ValueError) as e:
        raise ConfigError("cannot read credential key file %s: %s" % (key_file, e))
    try:
        key = b64url.decode(raw.decode("ascii").strip())
    except (UnicodeError, MalformedTokenError):
        raise ConfigError("credential key file %s is not base64url" % key_file)
    return SecretBox(key)
