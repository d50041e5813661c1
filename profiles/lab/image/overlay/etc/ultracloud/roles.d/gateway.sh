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
EOT
iam=""; for n in $cps; do iam="$iam${iam:+ }http://$(ip_of "$n"):8080"; done
cf=""; for n in $cps; do cf="$cf${cf:+ }http://$(ip_of "$n"):2379"; done
printf "IAM_ENDPOINTS='%s'\nCHAINFIRE_ENDPOINTS='%s'\n" "$iam" "$cf" > /etc/ultracloud/creditservice.env
cp /etc/ultracloud/creditservice.env /etc/ultracloud/fiberlb.env
systemctl --no-block start apigateway.service nightlight.service creditservice.service fiberlb.service
