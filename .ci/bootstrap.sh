#!/usr/bin/env bash
# Installs everything pbxcore needs on a fresh Debian machine, idempotently:
# apt packages (SIPp, baresip, espeak-ng, sox, tmux, PostgreSQL), a virtualenv in .venv with the
# package and its test extra, and a running PostgreSQL. Sourced by .ci/demo and .ci/test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

need_apt=()
command -v sipp >/dev/null || need_apt+=(sip-tester)
# baresip-core, not the baresip metapackage (GTK, GStreamer, FFmpeg): the peer tests run it
# headless with its aufile/aubridge/sndfile/ctrl_tcp modules.
command -v baresip >/dev/null || need_apt+=(baresip-core)
command -v sox >/dev/null || need_apt+=(sox)
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
command -v tmux >/dev/null || need_apt+=(tmux)  # pbx top is tested in a real terminal
# The web wallboard is tested in Debian's chromium, headless over the DevTools protocol.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
# Kamailio (dispatcher + path modules) is the SIP front of a cluster: tests/cluster runs it.
command -v kamailio >/dev/null || [ -x /usr/sbin/kamailio ] || need_apt+=(kamailio)
if [ "${#need_apt[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY="${PBX_PYTHON:-}"
if [ -z "$PY" ]; then
    for cand in python3 python3.11 python3.12 python3.13; do
        if command -v "$cand" >/dev/null && "$cand" -c "import sys; sys.exit(sys.version_info < (3, 11))" 2>/dev/null; then
            PY="$cand"; break
        fi
    done
fi
[ -n "$PY" ] || { echo "pbxcore needs Python >= 3.11" >&2; exit 1; }
if [ ! -x "$ROOT/.venv/bin/python" ]; then
    "$PY" -m venv "$ROOT/.venv"
fi
# Reinstall only when setup.cfg changed since the last install.
stamp="$ROOT/.venv/.pbxcore-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/setup.cfg" -nt "$stamp" ]; then
    "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test]"
    touch "$stamp"
fi
