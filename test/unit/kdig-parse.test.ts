import { describe, expect, it } from 'vitest';
import { parseKdig } from '../../src/services/flashdns.js';

/** kdig's output as knot-dnsutils 3.2 in the lab image prints it (captured from a lab node). */
const answered = `;; ->>HEADER<<- opcode: QUERY; status: NOERROR; id: 23530
;; Flags: qr aa; QUERY: 1; ANSWER: 2; AUTHORITY: 0; ADDITIONAL: 0

;; QUESTION SECTION:
;; web.smoke-x.ultracloud.test.		IN	A

;; ANSWER SECTION:
web.smoke-x.ultracloud.test.	60	IN	A	198.51.100.7
web.smoke-x.ultracloud.test.	60	IN	A	198.51.100.8

;; Received 78 B
;; Time 2026-11-23 18:18:55 UTC
;; From 10.100.0.12@53(UDP) in 22.7 ms
`;
const refused = `;; ->>HEADER<<- opcode: QUERY; status: REFUSED; id: 23289
;; Flags: qr; QUERY: 1; ANSWER: 0; AUTHORITY: 0; ADDITIONAL: 0

;; QUESTION SECTION:
;; nonexist.example.   		IN	A

;; Received 34 B
`;

describe('kdig output', () => {
  it('gives the status, the aa flag and the answer data', () => {
    expect(parseKdig('10.100.0.12', 'A', answered, 0)).toMatchObject({
      status: 'NOERROR',
      authoritative: true,
      answers: ['198.51.100.7', '198.51.100.8'],
    });
    expect(parseKdig('10.100.0.11', 'A', refused, 0)).toMatchObject({ status: 'REFUSED', authoritative: false, answers: [] });
  });

  it('a server that never replied is named as such', () => {
    expect(parseKdig('10.100.0.13', 'A', ';; WARNING: failed to query server 10.100.0.13@53(UDP)\n', 1).status).toBe(
      'NO REPLY (kdig exit 1)',
    );
  });
});
