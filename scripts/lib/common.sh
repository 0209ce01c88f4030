# Shared helpers for the entry-point scripts. Source it; do not run it.

say() {
  if [ -t 2 ]; then printf '\033[1m==> %s\033[0m\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi
}

# Runs apt-get as root (directly, or through sudo when available).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The Rust pieces every build needs.
ensure_rust() {
  command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
  if command -v rustup >/dev/null; then
    rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || {
      say "adding the wasm32-wasip2 target"
      rustup target add wasm32-wasip2
    }
  fi
}

# The guest side of plugins: the SDK, the sample plugins of plugins/ and the test plugins of
# tests/plugins/, built for wasm32-wasip2 into plugins/target.
build_plugins() {
  say "building the WebAssembly plugins (wasm32-wasip2)"
  (cd plugins && cargo build --release --locked --target wasm32-wasip2)
}

# The JavaScript and Python plugin toolchains, pinned, under target/plugin-toolchains (where
# `integration-host plugin build` looks, plugins.toolchains_dir): npm's componentize-js and jco
# from plugins/toolchains/js's lock file, and PyPI's componentize-py in a venv from
# plugins/toolchains/python/requirements.txt. Reinstalled when a pin changes.
ensure_plugin_toolchains() {
  local dir=target/plugin-toolchains
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    apt_install nodejs npm
  fi
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  if [ ! -f "$dir/js/node_modules/@bytecodealliance/componentize-js/src/componentize.js" ] \
    || ! cmp -s plugins/toolchains/js/package-lock.json "$dir/js/package-lock.json"; then
    say "installing the JavaScript plugin toolchain (componentize-js, jco)"
    rm -rf "$dir/js"
    mkdir -p "$dir/js"
    cp plugins/toolchains/js/package.json plugins/toolchains/js/package-lock.json "$dir/js/"
    (cd "$dir/js" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  local req=plugins/toolchains/python/requirements.txt
  if [ ! -x "$dir/python/bin/componentize-py" ] || ! cmp -s "$req" "$dir/python/requirements.txt"; then
    say "installing the Python plugin toolchain (componentize-py)"
    rm -rf "$dir/python"
    python3 -m venv "$dir/python"
    "$dir/python/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$dir/python/requirements.txt"
  fi
}

# nginx, which the forward-auth tests start on loopback with auth_request (the test runs its own
# instance from a temporary configuration; the packaged service is not used).
ensure_nginx() {
  [ -x /usr/sbin/nginx ] || apt_install nginx
}

# MariaDB, which the Magento import tests start as the Magento store's database.
ensure_mariadb() {
  [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
}

# Headless Chromium and its WebDriver, which the admin UI tests drive.
ensure_browser() {
  { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || apt_install chromium chromium-driver
}

# A free TCP port on the loopback interface.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# The third-party OAuth clients the API tests drive: Python requests-oauthlib in a venv under
# target/test-clients, and npm oauth-1.0a under tests/clients/node. Both pinned.
ensure_test_clients() {
  local venv=target/test-clients/venv
  local req=tests/clients/python/requirements.txt
  if ! command -v python3 >/dev/null; then
    apt_install python3 python3-venv
  fi
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
    say "installing the Python OAuth client (requests-oauthlib)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.txt"
  fi
  if ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  if [ ! -d tests/clients/node/node_modules/oauth-1.0a ] \
    || [ tests/clients/node/package-lock.json -nt tests/clients/node/node_modules/.package-lock.json ]; then
    say "installing the npm OAuth client (oauth-1.0a)"
    (cd tests/clients/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
