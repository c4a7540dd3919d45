#!/bin/sh
# Install nmosauth-lite on Raspberry Pi OS (bookworm) or another Debian-like embedded Linux:
# the firmware bundle (or a wheel), one system user per service, the systemd units and a config.
# Idempotent: run it again to upgrade; an existing /etc/nmosauth-lite/config.toml is kept.
#
#   sudo sh board/install.sh                 # dist/nmosauth-lite.pyz, with python3-cryptography
#   sudo sh board/install.sh --pure          # no cryptography: pure backend (protect only)
#   sudo sh board/install.sh --wheel dist/nmosauth_lite-0.1.0-py3-none-any.whl
#   sh board/install.sh --root /tmp/stage    # stage into a directory tree (image builds, no root)
#
# Options:
#   --pyz FILE     bundle to install (default: dist/nmosauth-lite.pyz of this checkout)
#   --wheel FILE   install this wheel into /opt/nmosauth-lite (a venv that sees apt's packages)
#   --pure         do not install python3-cryptography (the `as serve` unit then cannot run)
#   --no-apt       never call apt-get (packages are the image's business)
#   --root DIR     install below DIR; no apt, no users, no chown, no systemctl: the users and
#                  owners are made at first boot from sysusers.d and tmpfiles.d (see board/README)
#   --protect-cert FILE, --protect-key FILE   protect's TLS chain and key, to tls/protect/
#   --as-cert FILE, --as-key FILE             the authorization server's, to tls/as/ (always in pairs)
#   --enable UNIT  enable and start `protect`, `as` or `attach` (repeatable; not with --root)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
pyz="$top/dist/nmosauth-lite.pyz"
wheel=""
pure=0
apt=1
root=""
enable=""
protect_cert="" protect_key="" as_cert="" as_key=""

while [ $# -gt 0 ]; do
    case "$1" in
        --pyz) pyz=$2; shift 2 ;;
        --wheel) wheel=$2; shift 2 ;;
        --pure) pure=1; shift ;;
        --no-apt) apt=0; shift ;;
        --root) root=$2; shift 2 ;;
        --enable) enable="$enable $2"; shift 2 ;;
        --protect-cert) protect_cert=$2; shift 2 ;;
        --protect-key) protect_key=$2; shift 2 ;;
        --as-cert) as_cert=$2; shift 2 ;;
        --as-key) as_key=$2; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

if [ -n "$root" ]; then
    apt=0
    [ -z "$enable" ] || die "--enable does not go with --root"
    mkdir -p "$root"
    root=$(cd "$root" && pwd)
elif [ "$(id -u)" != 0 ]; then
    die "run as root (or stage with --root DIR)"
fi

lib="$root/usr/local/lib/nmosauth-lite"
bin="$root/usr/local/bin/nmosauth-lite"
venv="$root/opt/nmosauth-lite"
etc="$root/etc/nmosauth-lite"
units="$root/etc/systemd/system"
sysusers="$root/usr/local/lib/sysusers.d"
tmpfiles="$root/usr/local/lib/tmpfiles.d"
# A certificate goes with its key: half a pair would install a unit that restart-loops (issue 22).
half() {
    if [ -n "$1" ] && [ -z "$2" ]; then
        echo "install.sh: $3 needs $4 too (a certificate and its key go together; nothing installed)" >&2
        exit 2
    fi
}
half "$protect_cert" "$protect_key" --protect-cert --protect-key
half "$protect_key" "$protect_cert" --protect-key --protect-cert
half "$as_cert" "$as_key" --as-cert --as-key
half "$as_key" "$as_cert" --as-key --as-cert
for f in "$protect_cert" "$protect_key" "$as_cert" "$as_key"; do
    [ -z "$f" ] || [ -f "$f" ] || die "no such file: $f"
done

# --- packages -----------------------------------------------------------------------------
if [ "$apt" = 1 ]; then
    need=""
    command -v python3 >/dev/null 2>&1 || need="$need python3"
    if [ "$pure" = 0 ] && ! python3 -c 'import cryptography' >/dev/null 2>&1; then
        need="$need python3-cryptography"
    fi
    if [ -n "$wheel" ] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        need="$need python3-venv"
    fi
    if [ -n "$wheel" ] && ! python3 -c 'import ecdsa' >/dev/null 2>&1; then
        need="$need python3-ecdsa"  # the bundle vendors ecdsa; a wheel does not
    fi
    if [ -n "$need" ]; then
        say "apt-get install$need"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $need >/dev/null
    fi
fi
if [ -z "$root" ]; then
    python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
        die "nmosauth-lite needs Python 3.11 or newer (Raspberry Pi OS bookworm has 3.11)"
fi

# --- the program --------------------------------------------------------------------------
if [ -n "$wheel" ]; then
    [ -f "$wheel" ] || die "no wheel at $wheel"
    if [ -n "$root" ]; then
        say "staging: the wheel is installed on the target with"
        say "  python3 -m venv --system-site-packages /opt/nmosauth-lite && /opt/nmosauth-lite/bin/pip install --no-deps $(basename "$wheel")"
        mkdir -p "$venv"
        cp "$wheel" "$venv/"
    else
        [ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"
    fi
    mkdir -p "$(dirname "$bin")"
    ln -sf /opt/nmosauth-lite/bin/nmosauth-lite "$bin"
else
    [ -f "$pyz" ] || die "no bundle at $pyz: run \`make bundle\` (or python3 tools/build_bundle.py) first"
    install -d -m 0755 "$lib" "$(dirname "$bin")"
    install -m 0644 "$pyz" "$lib/nmosauth-lite.pyz.new"
    mv -f "$lib/nmosauth-lite.pyz.new" "$lib/nmosauth-lite.pyz"
    rm -f "$bin"  # it may be the wheel's symlink from an earlier install
    cat > "$bin.new" <<'WRAPPER'
#!/bin/sh
# nmosauth-lite firmware bundle (installed by board/install.sh)
exec /usr/bin/python3 /usr/local/lib/nmosauth-lite/nmosauth-lite.pyz "$@"
WRAPPER
    chmod 0755 "$bin.new"
    mv -f "$bin.new" "$bin"
fi

# --- users, configuration, TLS files -------------------------------------------------------
# Users come from board/sysusers.d and every owner and mode from board/tmpfiles.d: those two files
# are the one record, applied here on a live system and by systemd at first boot of a staged image.
install -d -m 0755 "$sysusers" "$tmpfiles"
install -m 0644 "$here/sysusers.d/nmosauth-lite.conf" "$sysusers/nmosauth-lite.conf"
install -m 0644 "$here/tmpfiles.d/nmosauth-lite.conf" "$tmpfiles/nmosauth-lite.conf"
if [ -z "$root" ]; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers "$sysusers/nmosauth-lite.conf"
    else  # no systemd: the same users with useradd
        awk '$1 == "u" { print $2, $(NF-1), $NF }' "$here/sysusers.d/nmosauth-lite.conf" |
        while read -r name home shell; do
            id "$name" >/dev/null 2>&1 ||
                useradd --system --user-group --no-create-home --home-dir "$home" --shell "$shell" "$name"
        done
    fi
fi

# apply_modes: every d/z line of the tmpfiles file below $root; owners too unless staging.
apply_modes() {
    grep -E '^[dz] ' "$here/tmpfiles.d/nmosauth-lite.conf" | while read -r type path mode user group _age; do
        case "$type" in
            d) install -d -m "$mode" "$root$path"; targets="$root$path" ;;
            z) targets=$(for f in $root$path; do if [ -e "$f" ]; then echo "$f"; fi; done) ;;
        esac
        for f in $targets; do
            chmod "$mode" "$f"
            [ -n "$root" ] || chown "$user:$group" "$f"
        done
    done
}

install -d -m 0755 "$etc"
install -m 0644 "$here/config.toml.example" "$etc/config.toml.example"
if [ ! -e "$etc/config.toml" ]; then
    install -m 0644 "$here/config.toml.example" "$etc/config.toml"
    say "wrote $etc/config.toml: edit [protect] (upstream, audience, issuer, cert, key)"
else
    say "kept $etc/config.toml (the new template is $etc/config.toml.example)"
fi
apply_modes  # the tls/ directories exist (and are closed) before a key is copied in
# put_tls SRC DEST MODE: atomically, never readable by anyone else in between (umask 077)
put_tls() {
    [ -n "$1" ] || return 0
    (umask 077 && cp "$1" "$2.new") && chmod "$3" "$2.new" && mv -f "$2.new" "$2"
    say "installed $2"
}
put_tls "$protect_cert" "$etc/tls/protect/node.pem" 0644
put_tls "$protect_key" "$etc/tls/protect/node.key" 0600
put_tls "$as_cert" "$etc/tls/as/auth.pem" 0644
put_tls "$as_key" "$etc/tls/as/auth.key" 0600
apply_modes  # keys: 0640 root:<service group>, also for keys put there by hand earlier
if [ -z "$root" ] && [ -e /var/lib/nmosauth-lite/authserver.db ]; then
    say "WARNING: /var/lib/nmosauth-lite holds an authorization server store from an older install:"
    say "  stop both services, then move authserver.db* and authserver-tls/ to /var/lib/nmosauth-lite-as/"
    say "  (chown -R nmosauth-as:nmosauth-as) and the issuer key files to /var/lib/nmosauth-lite-protect/"
fi
if [ -e "$etc/tls/node.key" ] || [ -e "$etc/tls/node.pem" ]; then
    say "WARNING: $etc/tls/node.* is from an older install: move it to $etc/tls/protect/ (see board/README)"
fi

install -d -m 0755 "$units"
changed=0
for unit in nmosauth-lite-protect.service nmosauth-lite-as.service nmosauth-lite-attach.service; do
    if ! cmp -s "$here/systemd/$unit" "$units/$unit" 2>/dev/null; then
        install -m 0644 "$here/systemd/$unit" "$units/$unit"
        changed=1
    fi
done

if [ -n "$root" ]; then
    say "staged into $root (modes set; users and owners are made at first boot by systemd-sysusers"
    say "  and systemd-tmpfiles, or in the image build: systemd-sysusers --root DIR && systemd-tmpfiles --root DIR --create)"
    exit 0
fi
if [ -d /run/systemd/system ]; then
    [ "$changed" = 0 ] || systemctl daemon-reload
    # running services pick up the new program now (try-restart leaves stopped ones alone)
    systemctl try-restart nmosauth-lite-protect.service nmosauth-lite-as.service nmosauth-lite-attach.service
    for u in $enable; do
        case "$u" in
            protect|as|attach) systemctl enable --now "nmosauth-lite-$u.service" ;;
            *) die "--enable takes protect, as or attach, not $u" ;;
        esac
    done
else
    say "systemd is not running here: units installed, not started"
fi
say "done: check with \`sudo -u nmosauth-protect nmosauth-lite doctor --state-dir /var/lib/nmosauth-lite-protect\`"
say "then: systemctl enable --now nmosauth-lite-protect (and/or nmosauth-lite-as)"
