#!/bin/sh
# Install nmosauth-lite on Raspberry Pi OS (bookworm) or another Debian-like embedded Linux:
# the firmware bundle (or a wheel), the `nmosauth` user, the systemd units and a config file.
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
#   --root DIR     install below DIR; no apt, no user creation, no systemctl (prints what to do)
#   --enable UNIT  enable and start `protect` or `as` (repeatable; not with --root)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
pyz="$top/dist/nmosauth-lite.pyz"
wheel=""
pure=0
apt=1
root=""
enable=""

while [ $# -gt 0 ]; do
    case "$1" in
        --pyz) pyz=$2; shift 2 ;;
        --wheel) wheel=$2; shift 2 ;;
        --pure) pure=1; shift ;;
        --no-apt) apt=0; shift ;;
        --root) root=$2; shift 2 ;;
        --enable) enable="$enable $2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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

# --- user, configuration, units -----------------------------------------------------------
if [ -n "$root" ]; then
    say "staging: create the user on the target with"
    say "  useradd --system --user-group --home-dir /var/lib/nmosauth-lite --no-create-home --shell /usr/sbin/nologin nmosauth"
elif ! id nmosauth >/dev/null 2>&1; then
    say "creating system user nmosauth"
    useradd --system --user-group --home-dir /var/lib/nmosauth-lite --no-create-home \
        --shell /usr/sbin/nologin --comment "nmosauth-lite services" nmosauth
fi

install -d -m 0755 "$etc"
install -d -m 0750 "$etc/tls"
if [ -z "$root" ]; then
    chgrp nmosauth "$etc/tls"
fi
install -m 0644 "$here/config.toml.example" "$etc/config.toml.example"
if [ ! -e "$etc/config.toml" ]; then
    install -m 0644 "$here/config.toml.example" "$etc/config.toml"
    say "wrote $etc/config.toml: edit [protect] (upstream, audience, issuer, cert, key)"
else
    say "kept $etc/config.toml (the new template is $etc/config.toml.example)"
fi

install -d -m 0755 "$units"
changed=0
for unit in nmosauth-lite-protect.service nmosauth-lite-as.service; do
    if ! cmp -s "$here/systemd/$unit" "$units/$unit" 2>/dev/null; then
        install -m 0644 "$here/systemd/$unit" "$units/$unit"
        changed=1
    fi
done

if [ -n "$root" ]; then
    say "staged into $root"
    exit 0
fi
if [ -d /run/systemd/system ]; then
    [ "$changed" = 0 ] || systemctl daemon-reload
    # running services pick up the new program now (try-restart leaves stopped ones alone)
    systemctl try-restart nmosauth-lite-protect.service nmosauth-lite-as.service
    for u in $enable; do
        case "$u" in
            protect|as) systemctl enable --now "nmosauth-lite-$u.service" ;;
            *) die "--enable takes protect or as, not $u" ;;
        esac
    done
else
    say "systemd is not running here: units installed, not started"
fi
say "done: check with \`sudo -u nmosauth STATE_DIRECTORY=/var/lib/nmosauth-lite nmosauth-lite doctor\`"
say "then: systemctl enable --now nmosauth-lite-protect (and/or nmosauth-lite-as)"
