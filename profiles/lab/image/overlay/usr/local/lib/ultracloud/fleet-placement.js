// fleet-scheduler's placement rule (pure: the scheduler feeds it what chainfire holds). Each
// replica of each declared service gets one worker: it stays where it is while that worker is
// alive (its node-agent's heartbeat lease exists) and not drained; otherwise it goes to the
// eligible worker holding the fewest instances (name order on ties) that holds no other replica
// of the same service; with none left it is pending (node null) until a worker returns.
'use strict';

/**
 * services: [{ name, replicas }]; nodes: [{ name, alive, drained }]; current: { '<svc>/<i>': node|null }.
 * Returns { '<svc>/<i>': node|null } for every replica of every service.
 */
function place(services, nodes, current) {
  const eligible = new Set(nodes.filter((n) => n.alive && !n.drained).map((n) => n.name));
  const load = new Map([...eligible].map((n) => [n, 0]));
  const out = {};
  const sorted = [...services].sort((a, b) => a.name.localeCompare(b.name));
  // Replicas that may stay first, so a move never takes a place a staying replica holds.
  const holders = new Map(sorted.map((s) => [s.name, new Set()]));
  for (const s of sorted)
    for (let i = 0; i < s.replicas; i++) {
      const at = current[`${s.name}/${i}`];
      if (at && eligible.has(at) && !holders.get(s.name).has(at)) {
        out[`${s.name}/${i}`] = at;
        holders.get(s.name).add(at);
        load.set(at, load.get(at) + 1);
      }
    }
  for (const s of sorted)
    for (let i = 0; i < s.replicas; i++) {
      const key = `${s.name}/${i}`;
      if (key in out) continue;
      const free = [...eligible].filter((n) => !holders.get(s.name).has(n)).sort((a, b) => load.get(a) - load.get(b) || a.localeCompare(b));
      out[key] = free[0] || null;
      if (free[0]) {
        holders.get(s.name).add(free[0]);
        load.set(free[0], load.get(free[0]) + 1);
      }
    }
  return out;
}

module.exports = { place };
