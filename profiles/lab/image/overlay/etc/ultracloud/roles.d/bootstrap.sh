#!/bin/sh
# bootstrap: the cluster's deployer (enrollment, phone-home, install plans, admin
# pre-registration), the one active writer, its state in its state dir. Its admin token is made
# once per cluster here and handed to the service as a systemd credential; the harness reads it
# over SSH as root, guests never see it.
set -eu
. /usr/local/lib/ultracloud/cluster-lib.sh
install -d -m 0700 /etc/ultracloud/deployer
t=/etc/ultracloud/deployer/admin.token
[ -s "$t" ] || { umask 077; od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$t"; }
# A Node service starts once the boot is done: under TCG its start-up costs seconds of CPU.
after_boot deployer.service
