# Helpers for role hooks: read the cluster layout from /etc/ultracloud/node.env.
. /etc/ultracloud/node.env
# nodes_with_role ROLE -> node names, in profile order
nodes_with_role() { for r in $CLUSTER_ROLES; do case ",${r#*=}," in *",$1,"*) echo "${r%%=*}";; esac; done; }
# ip_of NODE -> its cluster IP
ip_of() { for p in $CLUSTER_PEERS; do [ "${p%%=*}" = "$1" ] && echo "${p#*=}"; done; return 0; }
# after_boot UNIT...: start units once this boot's start jobs are all done (the system is
# "running"), off the boot's critical path: slow starters such as Swift's Python servers, which
# the profile marks deferred (readiness does not wait for them; the lanes that use them do).
after_boot() {
  # Named after its first unit: a node with two roles calls this once per role.
  systemd-run --no-block --collect --unit="ultracloud-after-boot-${1%.service}" --description="start $* after boot" \
    /bin/sh -c 'systemctl is-system-running --wait >/dev/null; exec systemctl --no-block start "$@"' after-boot "$@"
}
# lightningstor (Swift): swift.conf, identical rings from the topology (account and container
# servers on the control plane, object servers on the workers), and this node's device dir.
lightningstor_base() {
  ips() { out=""; for n in $(nodes_with_role "$1"); do out="$out${out:+,}$(ip_of "$n")"; done; echo "$out"; }
  install -d -o swift -g swift /srv/node/d1 /var/cache/swift
  cat > /etc/swift/swift.conf <<EOT
[swift-hash]
swift_hash_path_suffix = ultracloud-lab
swift_hash_path_prefix = ultracloud
[storage-policy:0]
name = Policy-0
default = yes
EOT
  /usr/local/lib/ultracloud/lightningstor-rings /etc/swift \
    "account:6202:$(ips control-plane)" "container:6201:$(ips control-plane)" "object:6200:$(ips worker)"
}
# lightningstor_server KIND PORT: one Swift storage server (account, container or object) on this
# node, in one process (workers = 0: no forked worker, which would load Swift a second time).
lightningstor_server() {
  cat > "/etc/swift/$1-server.conf" <<EOT
[DEFAULT]
bind_ip = 0.0.0.0
bind_port = $2
workers = 0
devices = /srv/node
mount_check = false
log_name = $1-server
[pipeline:main]
pipeline = $1-server
[app:$1-server]
use = egg:swift#$1
[$1-replicator]
[$1-updater]
[$1-auditor]
EOT
}
