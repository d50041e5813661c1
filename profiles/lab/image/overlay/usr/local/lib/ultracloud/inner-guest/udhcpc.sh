#!/bin/sh
# udhcpc's event script: configure eth0 from the lease (busybox ships none in an initramfs).
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
