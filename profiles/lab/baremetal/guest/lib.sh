# Shared by the installer and the installed system (busybox sh). Markers are fixed lines
# `ULTRACLOUD_MARKER <name> [key=value...]` on the virtio-serial port org.ultracloud.markers
# and the console; the harness checks them as an ordered sequence (kola testiso style).
MARKER_PORT=""

load_modules() {
  # Dependencies first: the harness wrote the order from each module's modinfo.
  for m in $(cat /lib/modules/load-order); do
    insmod "/lib/modules/$m.ko" || echo "ultracloud: insmod $m failed" > /dev/console
  done
  # Devices appear asynchronously after the drivers bind.
  i=0
  while [ $i -lt 50 ] && ! ls /sys/class/net/eth0 >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
}

find_marker_port() {
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = org.ultracloud.markers ] && MARKER_PORT=/dev/$(basename "$p")
  done
}

mark() {
  line="ULTRACLOUD_MARKER $*"
  echo "$line" > /dev/console
  [ -n "$MARKER_PORT" ] && echo "$line" > "$MARKER_PORT"
}

# Failure marker, then stop here (the lab's emergency mode): the harness fails at once on it.
fail() {
  mark FAIL "$1" "$2"
  report "failed" "$1: $2"
  echo "ultracloud: $1 failed: $2; halting (emergency)" > /dev/console
  while :; do sleep 3600; done
}

# Settings: fw_cfg opt/ultracloud/deployer (QEMU) wins over ultracloud.deployer= on the kernel command line (hardware).
deployer_url() {
  f=/sys/firmware/qemu_fw_cfg/by_name/opt/ultracloud/deployer/raw
  if [ -r "$f" ]; then cat "$f"; return; fi
  for a in $(cat /proc/cmdline); do case "$a" in ultracloud.deployer=*) echo "${a#ultracloud.deployer=}" ;; esac; done
}

net_up() {
  ip link set lo up
  ip link set eth0 up
  # QEMU user networking and most lab DHCP servers; a static fallback for QEMU's fixed layout.
  udhcpc -q -n -t 5 -i eth0 -s /lib/ultracloud/udhcpc.sh >/dev/null 2>&1 || {
    ip addr add 10.0.2.15/24 dev eth0
    ip route add default via 10.0.2.2
  }
}

# A POST to the deployer; body is JSON. Progress reports never stop the flow.
# (busybox 1.35 wget crashes on -T, so `timeout` bounds it.)
post() {
  timeout 30 wget -q -O - --header 'Content-Type: application/json' --header 'Accept: text/plain' --post-data "$2" "$DEPLOYER$1"
}

report() {
  [ -n "${NODE_ID:-}" ] && [ -n "${DEPLOYER:-}" ] && post "/api/v1/nodes/$NODE_ID/progress" "{\"stage\":\"$1\",\"detail\":\"$2\"}" >/dev/null 2>&1
  return 0
}

# Accept only KEY='value' lines (quotes escaped as '\'') from the deployer before evaluating them.
load_env() {
  [ -n "$1" ] || return 1
  if printf '%s\n' "$1" | grep -qvE "^[A-Z_][A-Z0-9_]*='([^']|'\\\\'')*'\$"; then return 1; fi
  eval "$1"
}
