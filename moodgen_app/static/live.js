() => {
  // Live mode's player: the stream's chunks arrive over a WebSocket (moodgen_app/live.py) and each is scheduled
  // in Web Audio right after the last, the moment it arrives; the pad's moves go back over the same socket.
  // window.moodgenLive: start(mood, settings), steer(mood), stop() -> the stream's id; position() -> the seconds
  // of the recording heard now. The pad (window.moodgenPad) shows the mood heard now and a trail of the last seconds.
  const TRAIL_S = 4;
  const live = window.moodgenLive = {playing: false, id: null, stalls: 0};
  let ctx = null, socket = null, base = null, chunks = [], sources = [], trail = [];
  const label = (text) => { const b = document.querySelector('#live-play'); if (b) b.textContent = text; };
  const status = (text) => {
    const s = document.querySelector('#live-status .live-status');
    if (s) s.textContent = text;
  };
  const newId = () => (crypto.randomUUID ? crypto.randomUUID()
                       : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`);
  live.position = () => {
    if (!ctx || base === null || !chunks.length) return null;
    const heard = ctx.currentTime - (ctx.outputLatency || 0) - (ctx.baseLatency || 0) - base;
    return Math.max(0, Math.min(heard, chunks[chunks.length - 1].end));  // stands still where the audio ran out
  };
  window.moodgenLivePosition = () => (live.playing ? live.position() : null);
  const schedule = (data) => {
    const [start, valence, arousal, rate] = new Float32Array(data, 0, 4);
    const pcm = new Int16Array(data, 16);
    const buffer = ctx.createBuffer(1, pcm.length, rate);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
    const now = ctx.currentTime;
    if (base === null) base = now + 0.02 - start;  // the first chunk plays at once
    if (base + start < now + 0.005) {  // it came too late: a gap, then the music goes on from now
      live.stalls += 1;
      base = now + 0.02 - start;
    }
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    source.start(base + start);
    source.onended = () => { sources = sources.filter((s) => s !== source); };
    sources.push(source);
    chunks.push({start, end: start + pcm.length / rate, valence, arousal});
    if (chunks.length > 64) chunks.shift();
  };
  const received = (message) => {
    if (message.error) {
      status(`Live: ${message.error}`);
      if (live.playing) document.querySelector('#live-stop')?.click();
    } else if (message.done && live.playing) {
      document.querySelector('#live-stop')?.click();  // the stream ended on its own: keep it all the same
    }
  };
  live.start = (mood, settings) => {
    if (live.playing) return;
    ctx = ctx || new AudioContext({latencyHint: 'interactive'});
    ctx.resume();
    live.id = newId();
    base = null; chunks = []; trail = []; live.stalls = 0; live.playing = true;
    const url = new URL('moodgen/live', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => socket.send(JSON.stringify({id: live.id, valence: mood[0], arousal: mood[1], settings}));
    socket.onmessage = (ev) => (typeof ev.data === 'string' ? received(JSON.parse(ev.data)) : schedule(ev.data));
    socket.onclose = () => { if (live.playing) document.querySelector('#live-stop')?.click(); };
    label('Stop');
    status('Live: starting…');
  };
  live.steer = (m) => {
    if (live.playing && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({valence: m.valence, arousal: m.arousal}));
    }
  };
  live.stop = () => {
    if (!live.playing) return null;
    live.playing = false;
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({stop: true}));
    sources.forEach((s) => s.stop());
    sources = [];
    label('Play live');
    status('Live: stopped; the recording is the result below');
    window.moodgenPad?.live(null);
    return live.id;
  };
  // the mood heard now: each chunk eases from the one before it to its own mood; every few ticks the server
  // learns where the player is, so it keeps just enough audio ahead of what is heard
  let tick = 0;
  setInterval(() => {
    const p = live.playing ? live.position() : null;
    if (p === null) return;
    if (tick++ % 3 === 0 && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({heard: p}));
    const i = chunks.findIndex((c) => c.end > p);
    if (i < 0) return;
    const c = chunks[i], before = chunks[i - 1] || c;
    const w = Math.max(0, Math.min(1, (p - c.start) / (c.end - c.start)));
    const now = [before.valence + w * (c.valence - before.valence), before.arousal + w * (c.arousal - before.arousal)];
    trail.push([p, ...now]);
    while (trail.length && trail[0][0] < p - TRAIL_S) trail.shift();
    window.moodgenPad?.live({marker: now, trail: trail.map(([, v, a]) => [v, a])});
    const clock = `${Math.floor(p / 60)}:${String(Math.floor(p % 60)).padStart(2, '0')}`;
    status(`Live ${clock} · hearing valence ${now[0].toFixed(2)}, arousal ${now[1].toFixed(2)}`);
  }, 100);
}
