#!/bin/sh
# udhcpc's event script: configure eth0 from the lease (busybox ships none in an initramfs).
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    # Classless static routes (option 121): "destination next-hop" pairs.
    set -- $staticroutes
    while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
