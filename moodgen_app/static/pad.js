// The pad's value is {valence, arousal, aimed, heard, real, spread, announce}; the SVG spans 0..200 on both axes
// (v = x/100 - 1, a = 1 - y/100) inside a viewBox with a margin. The point follows the pointer or the arrow keys
// locally; 'move' tells the sliders, 'pick' (pointer release, Enter) asks for a clip. While live mode plays
// (window.moodgenLive, static/live.js), every move steers the stream at once and a release makes no clip.
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
const live = () => window.moodgenLive?.playing;
const steer = (m) => { if (live()) window.moodgenLive.steer(m); return m; };
// live.js shows the mood heard now (a ring) and the trail of the last seconds; null takes them away
window.moodgenPad = {live: (v) => { props.value = {...props.value, live: v ? v.marker : null, trail: v ? v.trail : null}; }};
// In journey mode (value.mode) a drag draws a path, [[v, a], ...], and releasing it asks for a journey; a tap
// draws none, and the pad says so in plain words (value.hint).
const JOURNEY_HINT = 'Drag a path across the pad: the music follows it over the duration.';
const TAP_IN_JOURNEY = 'A tap makes no journey: drag a path across the pad.';
let dragging = false;
const drawing = () => props.value.mode === 'journey';
const extend = (m) => {
  const path = props.value.path || [];
  const last = path[path.length - 1];
  if (!last || Math.hypot(m.valence - last[0], m.arousal - last[1]) >= 0.02) {
    props.value = {...props.value, ...m, path: [...path, [m.valence, m.arousal]]};
  }
};
element.addEventListener('pointerdown', (ev) => {
  if (!ev.target.closest('svg.pad')) return;
  dragging = true;
  element.setPointerCapture(ev.pointerId);
  ev.preventDefault();
  svg().focus({preventScroll: true});
  if (drawing()) {
    props.value = {...props.value, path: [], curve: null, playhead: null, hint: JOURNEY_HINT};
    extend(toMood(ev));
  } else {
    steer(set(toMood(ev), false));
  }
});
// while dragging a point, 'move' tells the sliders (and a live stream) a few times a second
let told = 0;
element.addEventListener('pointermove', (ev) => {
  if (!dragging) return;
  if (drawing()) return extend(toMood(ev));
  const m = steer(set(toMood(ev), false));
  if (performance.now() - told > 200) {
    told = performance.now();
    trigger('move', m);
  }
});
element.addEventListener('pointerup', (ev) => {
  if (!dragging) return;
  dragging = false;
  // no clip while a number box holds an invalid value (the page's script says which; the point replaces the mood)
  const wait = window.moodgenInvalid?.(['valence', 'arousal']);
  if (drawing()) {
    extend(toMood(ev));
    if ((props.value.path || []).length < 2) {  // a tap: no path to follow
      props.value = {...props.value, path: null, hint: TAP_IN_JOURNEY, announce: TAP_IN_JOURNEY};
    } else if (!wait) {
      trigger('journey', {path: props.value.path});
    }
  } else if (live()) {
    trigger('move', steer(set(toMood(ev), false)));  // the sliders follow; the stream already has it
  } else {
    trigger(wait ? 'move' : 'pick', set(toMood(ev), false));
  }
});
element.addEventListener('pointercancel', () => { dragging = false; });
const ARROWS = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1]};
element.addEventListener('keydown', (ev) => {
  if (!ev.target.closest('svg.pad')) return;
  const now = {valence: props.value.valence, arousal: props.value.arousal};
  if (ev.key in ARROWS) {
    const step = ev.shiftKey ? 0.25 : 0.05;
    const [dv, da] = ARROWS[ev.key];
    trigger('move', steer(set({valence: clip(now.valence + dv * step), arousal: clip(now.arousal + da * step)},
                              true)));
  } else if (ev.key === 'Enter' || ev.key === ' ') {
    if (!window.moodgenInvalid?.(['valence', 'arousal'])) trigger('pick', set(now, true));
  } else {
    return;
  }
  ev.preventDefault();
});
// While the generated clip plays, a ring moves along the journey's curve ([seconds, v, a] rows): the player shows
// whole seconds, so between its ticks the time runs on the page's clock.
let tick = {shown: null, at: 0};
setInterval(() => {
  const curve = props.value.curve;
  const time = document.querySelector('#gen-audio time#time');
  if (!curve || !time) return;
  const [m, s] = time.innerText.split(':').map(Number);
  const shown = m * 60 + s;
  const playing = document.querySelector('#gen-audio button.play-pause-button')?.ariaLabel === 'Pause';
  if (shown !== tick.shown) tick = {shown, at: performance.now()};
  const t = shown + (playing ? Math.min(0.99, (performance.now() - tick.at) / 1000) : 0);
  let i = curve.findIndex(([u]) => u > t);
  if (i < 0) i = curve.length - 1;
  const [t0, v0, a0] = curve[Math.max(0, i - 1)], [t1, v1, a1] = curve[i];
  const w = t1 > t0 ? Math.max(0, Math.min(1, (t - t0) / (t1 - t0))) : 1;
  const head = [v0 + w * (v1 - v0), a0 + w * (a1 - a0)];
  const old = props.value.playhead;
  if (!old || Math.hypot(head[0] - old[0], head[1] - old[1]) > 0.004) props.value = {...props.value, playhead: head};
}, 100);
element.dataset.ready = 'true';  // lets a test (or a user script) wait until the pad listens
