// IPv4 arithmetic for prismnet's address management.
'use strict';
const IP_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

const toInt = (ip) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const toIp = (n) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** "10.1.2.0/24" -> { base, prefix, size } or null when it is not an aligned IPv4 network of /16../28. */
function parseCidr(cidr) {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(String(cidr));
  if (!m || !IP_RE.test(m[1])) return null;
  const prefix = Number(m[2]);
  if (prefix < 16 || prefix > 28) return null;
  const size = 2 ** (32 - prefix);
  const base = toInt(m[1]);
  if (base % size !== 0) return null;
  return { base, prefix, size };
}

/** Any IPv4 CIDR (/0../32, aligned): a security group rule's source. */
function parseCidrAny(cidr) {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(String(cidr));
  if (!m || !IP_RE.test(m[1]) || Number(m[2]) > 32) return null;
  const size = 2 ** (32 - Number(m[2]));
  return toInt(m[1]) % size === 0 ? { base: toInt(m[1]), prefix: Number(m[2]), size } : null;
}

const overlaps = (a, b) => a.base < b.base + b.size && b.base < a.base + a.size;

/** Host addresses: .1 the gateway, .2 the DHCP server on the network's DHCP worker, ports from .10. */
const gateway = (net) => toIp(net.base + 1);
const dhcpServer = (net) => toIp(net.base + 2);
const firstPortHost = 10;
const netmask = (prefix) => toIp(2 ** 32 - 2 ** (32 - prefix));

module.exports = { IP_RE, toInt, toIp, parseCidr, parseCidrAny, overlaps, gateway, dhcpServer, firstPortHost, netmask };
