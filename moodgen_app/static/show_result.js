// A result's marks on the pad, from its parameters: aimed (the request), heard (the judge; the pad keeps its
// spread, the judge's typical error per axis), real (the nearest real clip), curve (a journey's mood over time);
// and the Generate button idle again. The result (its summary, player and spectrogram) is brought into view with
// the least scrolling, wherever the action came from (Generate scrolled down, Enter in the waypoints box, a phone,
// where the result sits below the pad), and again once its spectrogram has loaded and the layout settled; not for
// the page's first result, the example made at start, so the first screen keeps the pad in view.
(params, pad) => {
  if (pad.aimed) {
    const bring = () => {
      const parts = ['#summary', '#gen-audio', '#gen-mel'].map(s => document.querySelector(s)).filter(Boolean)
        .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
      parts.at(-1)?.scrollIntoView({block: 'nearest'});
      parts[0]?.scrollIntoView({block: 'nearest'});
    };
    requestAnimationFrame(bring);
    document.querySelector('#gen-mel img')?.addEventListener('load', bring, {once: true});
  }
  return [{...pad, aimed: [params.valence, params.arousal], heard: params.judged,
           curve: params.mood_curve || null, path: null, playhead: null,
           real: params.nearest ? [params.nearest.valence, params.nearest.arousal] : null,
           announce: `Clip ready, aimed at valence ${params.valence.toFixed(2)}, arousal ${params.arousal.toFixed(2)}`},
          'Generate'];
}
