// A result's marks on the pad, from its parameters: aimed (the request), heard (the judge; the pad keeps its
// spread, the judge's typical error per axis), real (the nearest real clip), curve (a journey's mood over time);
// and the Generate button idle again. On a phone (app.css's one-column layout), where the result sits below the
// pad, the result is brought into view, except the page's first one (the example made at start: the first screen
// keeps the pad in view).
(params, pad) => {
  if (pad.aimed && window.matchMedia('(max-width: 760px)').matches) {
    document.querySelector('#result')?.scrollIntoView({block: 'start'});
  }
  return [{...pad, aimed: [params.valence, params.arousal], heard: params.judged,
           curve: params.mood_curve || null, path: null, playhead: null,
           real: params.nearest ? [params.nearest.valence, params.nearest.arousal] : null,
           announce: `Clip ready, aimed at valence ${params.valence.toFixed(2)}, arousal ${params.arousal.toFixed(2)}`},
          'Generate'];
}
