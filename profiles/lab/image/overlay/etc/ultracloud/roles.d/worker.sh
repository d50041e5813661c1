#!/bin/sh
# worker: plasmavmc-agent (runs VMs), prismnet-agent (tenant networks) and coronafs-agent
# (node-local volumes), all reaching chainfire on the control plane.
set -eu
. /usr/local/lib/ultracloud/cluster-lib.sh
cf=""; for n in $(nodes_with_role control-plane); do cf="$cf${cf:+ }http://$(ip_of "$n"):2379"; done
echo "CHAINFIRE_ENDPOINTS='$cf'" > /etc/ultracloud/worker.env
printf "CHAINFIRE_ENDPOINTS='%s'\nCORONAFS_ROLE=worker\n" "$cf" > /etc/ultracloud/coronafs.env
modprobe -a tun bridge vxlan nf_conntrack_bridge
systemctl --no-block start plasmavmc-agent.service prismnet-agent.service coronafs-agent.service
