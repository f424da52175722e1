// Play live, or Stop while playing (the unseen Stop button keeps what was played as the result)
(v, a, seed, randomize, engine, steps, guidance, key, instrument, soundfont, bpm) => {
  const live = window.moodgenLive;
  if (live.playing) {
    document.querySelector('#live-stop').click();
  } else {
    live.start([v, a], [seed, randomize, engine, steps, guidance, key, instrument, soundfont, bpm]);
  }
}
