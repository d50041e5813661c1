#!/usr/bin/env bash
# Host setup for ultracloud on Debian: installs the Debian packages the harness calls (as root)
# or says exactly which are missing, then installs the npm dependencies (npm ci, which also
# compiles the CLI to dist/). Idempotent: a second run with nothing missing does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# tool -> package: qemu-system-x86_64 qemu-system-x86 | qemu-img qemu-utils | vde_switch vde2 |
# mmdebstrap | mkfs.ext4 e2fsprogs | ssh, ssh-keygen openssh-client | nix nix-bin | as binutils |
# busybox, cpio: the nix fixture's and the lab installer's initramfs (busybox-static, cpio) |
# grub-mkrescue, xorriso: the lab installer ISO (grub-common, grub-pc-bin, xorriso, mtools) |
# flock: util-linux (the state lock) | chromium: serve-vm-webapp's and the report's browser (playwright-core) |
# curl: the e2e test uses serve-vm-webapp's URL as a user would |
# haproxy: fiberlb's tests check the config its agent renders, and drive a real haproxy's runtime API |
# pdns_server, sqlite3: k8shost's translation tests write DNS names through a real PowerDNS (pdns-server,
# pdns-backend-sqlite3; sqlite3 makes its database) | openssl: the per-cluster CA (iam's mTLS rotation)
PKGS=(qemu-system-x86 qemu-utils vde2 mmdebstrap e2fsprogs openssh-client ca-certificates binutils nix-bin busybox-static cpio
  grub-common grub-pc-bin xorriso mtools util-linux chromium curl haproxy pdns-server pdns-backend-sqlite3 sqlite3 openssl)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 2
  fi
fi

# Nix: Debian's nix-bin ships no nix.conf. Without one, flakes are off and builds need a
# `nixbld` group that nix-bin does not create. Write a minimal one only if none exists.
if [[ ! -e /etc/nix/nix.conf && $(id -u) -eq 0 ]]; then
  mkdir -p /etc/nix
  {
    echo "# written by ultracloud scripts/setup-host.sh (no nix.conf existed)"
    echo "experimental-features = nix-command flakes"
    echo "sandbox = false"
    getent group nixbld >/dev/null || echo "build-users-group ="
  } > /etc/nix/nix.conf
  echo "setup: wrote /etc/nix/nix.conf: $(grep -v '^#' /etc/nix/nix.conf | paste -sd ';')"
fi

# A kernel for kernel-only guests (the nix fixture flake and the lab installer ISO): Debian's cloud kernel,
# unpacked from its .deb, never installed (installing would touch this host's boot setup).
KDIR=/var/cache/ultracloud/kernel
if [[ ! -r $KDIR/vmlinuz ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -q "$pkg" 2>/dev/null) || { apt-get update -q && (cd "$tmp" && apt-get download -q "$pkg"); }
    mkdir -p "$KDIR"
    dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" ./boot ./lib/modules
    cp "$tmp"/boot/vmlinuz-* "$KDIR/vmlinuz.new" && mv "$KDIR/vmlinuz.new" "$KDIR/vmlinuz"
    rm -rf "$KDIR/modules" && mv "$tmp"/lib/modules "$KDIR/modules"
    chmod -R a+rX "$KDIR"
    rm -rf "$tmp"
    echo "setup: unpacked $pkg to $KDIR"
  else
    echo "setup: no test kernel at $KDIR/vmlinuz (the nix fixture needs it); run this script as root once" >&2
  fi
fi

# etcd for the tests that run the lab's control APIs on this host against a real chainfire:
# unpacked from Debian's etcd-server .deb, never installed (installing starts a host etcd).
EDIR=/var/cache/ultracloud/etcd
if [[ ! -x $EDIR/etcd ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -q etcd-server 2>/dev/null) || { apt-get update -q && (cd "$tmp" && apt-get download -q etcd-server); }
    dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" ./usr/bin/etcd
    mkdir -p "$EDIR" && cp "$tmp/usr/bin/etcd" "$EDIR/etcd.new" && mv "$EDIR/etcd.new" "$EDIR/etcd"
    rm -rf "$tmp"
    echo "setup: unpacked etcd-server's etcd to $EDIR"
  else
    echo "setup: no etcd at $EDIR/etcd (the control-API tests need it); run this script as root once" >&2
  fi
fi

command -v node >/dev/null || { echo "setup: Node.js 20 is required (apt-get install nodejs npm)" >&2; exit 2; }
major=$(node -p 'process.versions.node.split(".")[0]')
((major >= 20)) || { echo "setup: Node.js >= 20 required, found $(node --version)" >&2; exit 2; }

# npm ci only when the lockfile changed since the last install (it also builds dist/ via prepare).
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json || ! -f dist/cli.js ]]; then
  npm ci --no-audit --no-fund
  [[ -f dist/cli.js ]] || npm run build
fi
# The repo's work root (not in git): made and marked here by the harness's own rule (only when
# absent or empty), before any test or lane writes into it, so clean and fresh runs may delete inside it.
node --input-type=module -e "await (await import('./dist/core/work-root.js')).ensureWorkRoot('work')"
echo "setup: host ready"
