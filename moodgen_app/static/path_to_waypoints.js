// A path drawn on the pad, [[v, a], ...] -> at most 12 waypoints "t:v,a ..." spaced along it, its length spread
// over the duration (seconds).
(pad, seconds) => {
  const p = pad.path || [], d = [0];
  for (let i = 1; i < p.length; i++) d.push(d[i - 1] + Math.hypot(p[i][0] - p[i - 1][0], p[i][1] - p[i - 1][1]));
  const total = d[d.length - 1] || 0, n = Math.min(12, p.length), out = [];
  let last = -1;
  for (let k = 0; k < n; k++) {
    const i = Math.max(0, d.findIndex(x => x >= (n > 1 ? total * k / (n - 1) : 0) - 1e-9));
    if (i === last) continue;
    last = i;
    out.push(`${(total ? seconds * d[i] / total : 0).toFixed(2)}:${p[i][0].toFixed(2)},${p[i][1].toFixed(2)}`);
  }
  return out.join(' ');
}
