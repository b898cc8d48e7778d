# Sourced by scripts/serve, scripts/test and scripts/bench: make this checkout
# runnable on a fresh machine, idempotently. Usage: bootstrap [extra apt packages...]
# - .venv with the client (clients/python) and the package installed editable (re-installed when
#   setup.cfg or the client's pyproject.toml changes); the server requires the client, and naming
#   its folder here means pip takes it from the checkout, never from an index
# - the system Chromium (its headless shell, the default, and the full binary) and fonts, and with the
#   test extras promtool (apt-get when root; otherwise says the command)

bootstrap() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    cd "$root" || return 1

    local wanted=(chromium-headless-shell chromium fonts-liberation fonts-noto-color-emoji "$@")
    local extras="${BOOTSTRAP_EXTRAS:-test}"
    # promtool (Debian's prometheus package): the tests check deploy/prometheus/alerts.yml with it
    [[ ",$extras," == *",test,"* ]] && wanted+=(prometheus)
    local missing=()
    local pkg
    for pkg in "${wanted[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "bootstrap: installing ${missing[*]} with apt-get" >&2
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >/dev/null
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        elif ! command -v chromium-headless-shell >/dev/null && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
            echo "bootstrap: missing ${missing[*]}; install them with:" >&2
            echo "    sudo apt-get install -y ${missing[*]}" >&2
            return 1
        else
            echo "bootstrap: warning: missing ${missing[*]} (sudo apt-get install -y ${missing[*]})" >&2
        fi
    fi

    local python="${PYTHON:-python3}"
    if [ ! -x .venv/bin/python ]; then
        echo "bootstrap: creating .venv" >&2
        "$python" -m venv .venv
    fi
    local stamp
    stamp=".venv/.installed-$(cat setup.cfg pyproject.toml clients/python/pyproject.toml | sha256sum | cut -c1-16)-${extras//,/-}"
    if [ ! -f "$stamp" ]; then
        echo "bootstrap: installing the package and its [$extras] extras into .venv" >&2
        .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
        .venv/bin/python -m pip install -q --disable-pip-version-check -e ./clients/python -e ".[$extras]"
        .venv/bin/python -m pip check
        touch "$stamp"  # one stamp per (setup.cfg, extras): serve/test/bench do not undo each other
    fi
}
