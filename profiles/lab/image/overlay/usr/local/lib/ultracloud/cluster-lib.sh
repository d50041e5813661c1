# Helpers for role hooks: read the cluster layout from /etc/ultracloud/node.env.
. /etc/ultracloud/node.env
# nodes_with_role ROLE -> node names, in profile order
nodes_with_role() { for r in $CLUSTER_ROLES; do case ",${r#*=}," in *",$1,"*) echo "${r%%=*}";; esac; done; }
# ip_of NODE -> its cluster IP
ip_of() { for p in $CLUSTER_PEERS; do [ "${p%%=*}" = "$1" ] && echo "${p#*=}"; done; return 0; }
