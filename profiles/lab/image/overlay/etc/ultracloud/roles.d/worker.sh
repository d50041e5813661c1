#!/bin/sh
# worker: plasmavmc-agent (runs VMs), prismnet-agent (tenant networks) and coronafs-agent
# (node-local volumes), all reaching chainfire on the control plane.
set -eu
. /usr/local/lib/ultracloud/cluster-lib.sh
# The last control-plane member first: the first one boots first and usually leads, and the leader
# of a TCG cluster has no CPU to spare for the agents' watches and keepalives.
cf=""; for n in $(nodes_with_role control-plane); do cf="http://$(ip_of "$n"):2379${cf:+ }$cf"; done
echo "CHAINFIRE_ENDPOINTS='$cf'" > /etc/ultracloud/worker.env
printf "CHAINFIRE_ENDPOINTS='%s'\nCORONAFS_ROLE=worker\n" "$cf" > /etc/ultracloud/coronafs.env
modprobe -a tun bridge vxlan nf_conntrack_bridge
# lightningstor: this worker's Swift object server (two workers: two replicas).
lightningstor_base
lightningstor_server object 6200
systemctl --no-block start plasmavmc-agent.service prismnet-agent.service coronafs-agent.service
after_boot swift-object.service node-agent.service
