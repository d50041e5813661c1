#!/bin/sh
# worker: plasmavmc-agent (runs VMs) and prismnet-agent (tenant networks), both reaching
# chainfire on the control plane.
set -eu
. /usr/local/lib/ultracloud/cluster-lib.sh
cf=""; for n in $(nodes_with_role control-plane); do cf="$cf${cf:+ }http://$(ip_of "$n"):2379"; done
echo "CHAINFIRE_ENDPOINTS='$cf'" > /etc/ultracloud/worker.env
modprobe -a tun bridge vxlan
systemctl --no-block start plasmavmc-agent.service prismnet-agent.service
