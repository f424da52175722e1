const toMood = (ev) => {
  const r = element.querySelector('svg.pad').getBoundingClientRect();
  const x = (ev.clientX - r.left) / r.width * 224 - 12;
  const y = (ev.clientY - r.top) / r.height * 224 - 12;
  const clip = (u) => Math.max(-1, Math.min(1, Math.round(u * 100) / 100));
  return {valence: clip(x / 100 - 1), arousal: clip(1 - y / 100)};
};
let dragging = false;
const follow = (ev) => { const m = toMood(ev); props.value = {...props.value, ...m}; return m; };
element.addEventListener('pointerdown', (ev) => {
  if (!ev.target.closest('svg.pad')) return;
  dragging = true;
  element.setPointerCapture(ev.pointerId);
  ev.preventDefault();
  follow(ev);
});
element.addEventListener('pointermove', (ev) => { if (dragging) follow(ev); });
element.addEventListener('pointerup', (ev) => {
  if (!dragging) return;
  dragging = false;
  trigger('pick', follow(ev));
});
element.addEventListener('pointercancel', () => { dragging = false; });
element.dataset.ready = 'true';  // lets a test (or a user script) wait until the pad listens
