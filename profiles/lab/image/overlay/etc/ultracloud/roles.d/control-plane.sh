#!/bin/sh
# TCG guests on a 2-core host stall for hundreds of ms: etcd heartbeat 500 ms / election 5 s.
# control plane: chainfire (etcd) x3, flaredb (PostgreSQL primary on the first control-plane node,
# streaming standbys on the others), iam, flaredb's HTTP surface, flashdns (PowerDNS), and the control APIs
# (one process: plasmavmc, prismnet, coronafs with this node's controller exports) on each.
set -eu
. /usr/local/lib/ultracloud/cluster-lib.sh
cps=$(nodes_with_role control-plane)
initial=""; for n in $cps; do initial="$initial${initial:+,}$n=http://$(ip_of "$n"):2380"; done
primary=$(echo "$cps" | head -n 1)
cat > /etc/ultracloud/chainfire.env <<EOT
ETCD_NAME=$NODE_NAME
ETCD_DATA_DIR=/var/lib/etcd/chainfire
ETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380
ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379
ETCD_ADVERTISE_CLIENT_URLS=http://$CLUSTER_IP:2379
ETCD_INITIAL_ADVERTISE_PEER_URLS=http://$CLUSTER_IP:2380
ETCD_INITIAL_CLUSTER=$initial
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=ultracloud-lab
ETCD_HEARTBEAT_INTERVAL=500
ETCD_ELECTION_TIMEOUT=5000
ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL=5s
EOT
cat > /etc/ultracloud/flaredb.env <<EOT
FLAREDB_PRIMARY=$primary
FLAREDB_PRIMARY_IP=$(ip_of "$primary")
EOT
touch /etc/ultracloud/iam.env
# iam's credentials: the admin secret is made on the bootstrap node only (iam registers it once,
# cluster-wide); the TLS files stay empty until the harness installs its cluster CA's material.
install -d -m 0700 /etc/ultracloud/iam
( umask 077; cd /etc/ultracloud/iam && touch admin.secret tls-ca.pem tls-cert.pem tls-key.pem tls-crl.pem
  if nodes_with_role bootstrap | grep -qx "$NODE_NAME" && [ ! -s admin.secret ]; then od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > admin.secret; fi )
# The control APIs (plasmavmc, prismnet, coronafs, with the controller's volume exports) use the local chainfire member and iam first.
cf="http://127.0.0.1:2379"; iam="http://127.0.0.1:8080"
for n in $cps; do [ "$n" = "$NODE_NAME" ] || { cf="$cf http://$(ip_of "$n"):2379"; iam="$iam http://$(ip_of "$n"):8080"; }; done
# k8shost translates services into fiberlb objects: fiberlb's API is on the gateway.
gw=$(nodes_with_role gateway | head -n 1)
printf "CHAINFIRE_ENDPOINTS='%s'\nIAM_ENDPOINTS='%s'\nFIBERLB_URL='http://%s:8150'\n" "$cf" "$iam" "$(ip_of "$gw")" > /etc/ultracloud/control-apis.env
# flashdns: PowerDNS on this node's flaredb (trust on loopback, lab only), its web server
# (statistics) on every node and, on the primary's, the HTTP API that adds zones and records
# (writes need the primary). No caches and no zone cache: a record added on the primary is
# answered by every node as soon as its flaredb has replayed it.
install -d -m 0750 -g pdns /etc/ultracloud/flashdns
[ -s /etc/ultracloud/flashdns/api.key ] || { od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > /etc/ultracloud/flashdns/api.key; chmod 0640 /etc/ultracloud/flashdns/api.key; chgrp pdns /etc/ultracloud/flashdns/api.key; }
{
  echo "launch=gpgsql"; echo "gpgsql-host=127.0.0.1"; echo "gpgsql-user=postgres"; echo "gpgsql-dbname=flashdns"
  echo "local-address=0.0.0.0"; echo "local-port=53"
  echo "cache-ttl=0"; echo "negquery-cache-ttl=0"; echo "query-cache-ttl=0"; echo "zone-cache-refresh-interval=0"
  echo "receiver-threads=1"; echo "distributor-threads=1"  # one backend connection: memory, on 1 vCPU
  echo "webserver=yes"; echo "webserver-address=0.0.0.0"; echo "webserver-port=8281"
  echo "webserver-allow-from=127.0.0.0/8,$CLUSTER_IP/$CLUSTER_PREFIX"
  [ "$NODE_NAME" != "$primary" ] || { echo "api=yes"; echo "api-key=$(cat /etc/ultracloud/flashdns/api.key)"; }
} > /etc/ultracloud/flashdns/pdns.conf
chmod 0640 /etc/ultracloud/flashdns/pdns.conf; chgrp pdns /etc/ultracloud/flashdns/pdns.conf
# lightningstor: Swift's account and container servers (three replicas, one per control-plane node).
lightningstor_base
lightningstor_server account 6202
lightningstor_server container 6201
systemctl --no-block start chainfire.service flaredb.service iam.service flaredb-http.service control-apis.service flashdns.service
after_boot swift-account.service swift-container.service
