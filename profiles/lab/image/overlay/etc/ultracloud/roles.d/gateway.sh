#!/bin/sh
# gateway: apigateway (nginx) in front of iam, flaredb and creditservice (state in chainfire); nightlight
# (Prometheus); fiberlb (its API and agent, and the haproxy it drives).
set -eu
. /usr/local/lib/ultracloud/cluster-lib.sh
cps=$(nodes_with_role control-plane)
servers() { for n in $cps; do echo "    server $(ip_of "$n"):$1 max_fails=1 fail_timeout=5s;"; done; }
cat > /etc/ultracloud/apigateway.conf <<EOT
pid /run/apigateway.pid;
error_log /var/log/nginx/apigateway.error.log;
events {}
http {
  access_log /var/log/nginx/apigateway.access.log;
  upstream iam {
$(servers 8080)
  }
  upstream flaredb {
$(servers 8081)
  }
  server {
    listen 80;
    proxy_next_upstream error timeout http_502 http_503;
    proxy_connect_timeout 3s;
    location = /health { default_type application/json; return 200 '{"status":"ok","service":"apigateway"}'; }
    location /iam/ { proxy_pass http://iam/; }
    location /flaredb/ { proxy_pass http://flaredb/; }
    location /credit/ { proxy_pass http://127.0.0.1:8090/; }
    location /nightlight/ { proxy_pass http://127.0.0.1:9090/; }
  }
}
EOT
cat > /etc/ultracloud/nightlight.yml <<EOT
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: nightlight
    static_configs:
      - targets: ['127.0.0.1:9090']
  # creditservice's accounts as gauges: a tenant's wallet and reservations become metrics here.
  - job_name: creditservice
    scrape_interval: 5s
    static_configs:
      - targets: ['127.0.0.1:8090']
EOT
iam=""; for n in $cps; do iam="$iam${iam:+ }http://$(ip_of "$n"):8080"; done
cf=""; for n in $cps; do cf="$cf${cf:+ }http://$(ip_of "$n"):2379"; done
printf "IAM_ENDPOINTS='%s'\nCHAINFIRE_ENDPOINTS='%s'\n" "$iam" "$cf" > /etc/ultracloud/creditservice.env
cp /etc/ultracloud/creditservice.env /etc/ultracloud/fiberlb.env
# lightningstor: the Swift proxy with S3 (s3api with SigV4, tempauth's one lab user, object
# versioning) and memcached beside it. The S3 secret is made once; the harness reads it over SSH.
lightningstor_base
install -d -m 0700 /etc/ultracloud/lightningstor
[ -s /etc/ultracloud/lightningstor/s3.secret ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > /etc/ultracloud/lightningstor/s3.secret
cat > /etc/swift/proxy-server.conf <<EOT
[DEFAULT]
bind_ip = 0.0.0.0
bind_port = 8180
workers = 0
log_name = swift-proxy
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
location = ultracloud-lab
[filter:tempauth]
use = egg:swift#tempauth
user_lab_s3 = $(cat /etc/ultracloud/lightningstor/s3.secret) .admin
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_object_versioning = true
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:11211
[filter:proxy-logging]
use = egg:swift#proxy_logging
$(for f in symlink copy slo dlo bulk listing_formats gatekeeper catch_errors healthcheck; do printf '[filter:%s]\nuse = egg:swift#%s\n' "$f" "$f"; done)
EOT
chmod 0640 /etc/swift/proxy-server.conf; chgrp swift /etc/swift/proxy-server.conf
systemctl --no-block start apigateway.service nightlight.service creditservice.service fiberlb.service memcached.service
after_boot swift-proxy.service
