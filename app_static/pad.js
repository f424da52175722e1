// The pad's value is {valence, arousal, aimed, heard, real, spread, announce}; the SVG spans 0..200 on both axes
// (v = x/100 - 1, a = 1 - y/100) inside a viewBox with a margin. The point follows the pointer or the arrow keys
// locally; 'move' tells the sliders, 'pick' (pointer release, Enter) asks for a clip.
const svg = () => element.querySelector('svg.pad');
const clip = (u) => Math.max(-1, Math.min(1, Math.round(u * 100) / 100));
const quadrant = (m) => m.arousal >= 0 ? (m.valence >= 0 ? 'happy' : 'angry') : (m.valence >= 0 ? 'relaxed' : 'sad');
const toMood = (ev) => {
  const r = svg().getBoundingClientRect();
  const box = svg().viewBox.baseVal;
  const x = (ev.clientX - r.left) / r.width * box.width + box.x;
  const y = (ev.clientY - r.top) / r.height * box.height + box.y;
  return {valence: clip(x / 100 - 1), arousal: clip(1 - y / 100)};
};
const set = (m, announce) => {
  props.value = {...props.value, ...m,
    announce: announce ? `valence ${m.valence.toFixed(2)}, arousal ${m.arousal.toFixed(2)}: ${quadrant(m)}` : ''};
  return m;
};
let dragging = false;
element.addEventListener('pointerdown', (ev) => {
  if (!ev.target.closest('svg.pad')) return;
  dragging = true;
  element.setPointerCapture(ev.pointerId);
  ev.preventDefault();
  svg().focus({preventScroll: true});
  set(toMood(ev), false);
});
element.addEventListener('pointermove', (ev) => { if (dragging) set(toMood(ev), false); });
element.addEventListener('pointerup', (ev) => {
  if (!dragging) return;
  dragging = false;
  trigger('pick', set(toMood(ev), false));
});
element.addEventListener('pointercancel', () => { dragging = false; });
const ARROWS = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1]};
element.addEventListener('keydown', (ev) => {
  if (!ev.target.closest('svg.pad')) return;
  const now = {valence: props.value.valence, arousal: props.value.arousal};
  if (ev.key in ARROWS) {
    const step = ev.shiftKey ? 0.25 : 0.05;
    const [dv, da] = ARROWS[ev.key];
    trigger('move', set({valence: clip(now.valence + dv * step), arousal: clip(now.arousal + da * step)}, true));
  } else if (ev.key === 'Enter' || ev.key === ' ') {
    trigger('pick', set(now, true));
  } else {
    return;
  }
  ev.preventDefault();
});
element.dataset.ready = 'true';  // lets a test (or a user script) wait until the pad listens
