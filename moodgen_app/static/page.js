() => {
  // Gradio's widgets, named for screen readers (axe-core's checks): each spectrogram sits inside a button with an
  // empty alt text; an empty player is a div with an aria-label and no role; the playback-speed button's name
  // leaves out the speed it shows.
  const names = {'gen-mel': 'Mel-spectrogram of the generated clip',
                 'real-mel': 'Mel-spectrogram of the nearest real clip'};
  const label = () => {
    for (const [id, name] of Object.entries(names)) {
      const img = document.querySelector(`#${id} img`);
      if (img && img.alt !== name) {
        img.alt = name;
        img.closest('button')?.setAttribute('aria-label', name);
      }
    }
    for (const empty of document.querySelectorAll('.empty[aria-label]:not([role])')) empty.setAttribute('role', 'img');
    for (const speed of document.querySelectorAll('.playback[aria-label]')) {
      const shown = speed.innerText.trim(), name = speed.getAttribute('aria-label');
      if (shown && !name.startsWith(shown)) speed.setAttribute('aria-label', `${shown} speed. ${name}`);
    }
  };
  new MutationObserver(label).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                       attributes: true, attributeFilter: ['src', 'aria-label']});

  // Number boxes, checked by the library (the app's check_field) before Gradio sees them: a box's text reaches
  // Gradio only once it is valid, so Gradio neither clamps it nor sends it; until then one line under the box says
  // why. While a box holds an invalid value, nothing asks for a clip.
  const FIELDS = ['valence', 'arousal', 'duration', 'seed', 'steps', 'guidance'];
  const CHECK_URL = `${(window.gradio_config?.root ?? '').replace(/\/$/, '')}/gradio_api/run/check_field`;
  const fieldOf = (e) => e instanceof HTMLInputElement && e.type === 'number'
    ? e.closest(FIELDS.map(f => `#${f}`).join(', '))?.id : undefined;
  const passed = new WeakSet();  // the events handed on to Gradio once their text was found valid
  const check = async (field, text) => {
    const value = text.trim() !== '' && Number.isFinite(Number(text)) ? Number(text) : text;
    const response = await fetch(CHECK_URL, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                             body: JSON.stringify({data: [field, value]})});
    return (await response.json()).data[0];
  };
  const say = (input, field, message) => {
    const block = document.getElementById(field);
    let line = block.querySelector('.field-message');
    if (!line) {
      line = Object.assign(document.createElement('p'), {className: 'field-message', id: `${field}-message`});
      line.setAttribute('role', 'status');
      block.append(line);
    }
    line.textContent = message;
    input.setAttribute('aria-invalid', message ? 'true' : 'false');
    input.dataset.invalid = message ? input.value : '';
    if (message) input.setAttribute('aria-describedby', line.id);
    else input.removeAttribute('aria-describedby');
  };
  document.addEventListener('input', async (ev) => {
    const input = ev.target, field = fieldOf(input);
    if (!field || passed.has(ev)) return;
    ev.stopImmediatePropagation();
    const text = input.value;
    input.dataset.checking = text;
    const message = await check(field, text).catch(() => '');  // no answer: Gradio's own handling
    if (input.value !== text) return;  // typed on meanwhile: the newer text's check decides
    delete input.dataset.checking;
    say(input, field, message);
    if (!message) {
      const again = new Event('input', {bubbles: true});
      passed.add(again);
      input.dispatchEvent(again);
    }
  }, true);
  // leaving a box whose text is invalid (or not yet checked) leaves it as typed: Gradio would clamp it
  document.addEventListener('blur', (ev) => {
    const input = ev.target;
    if (fieldOf(input) && (input.getAttribute('aria-invalid') === 'true' || input.dataset.checking !== undefined)) {
      ev.stopImmediatePropagation();
    }
  }, true);
  // a box Gradio itself fills in (a result's seed, the pad's point) holds a valid value again
  setInterval(() => {
    for (const input of document.querySelectorAll('input[aria-invalid=true]')) {
      if (input.dataset.checking === undefined && input.value !== input.dataset.invalid) {
        say(input, fieldOf(input), '');
      }
    }
  }, 250);
  // What asks for a clip waits for every box to be valid (the pad's point replaces valence and arousal).
  window.moodgenInvalid = (except = []) => [...document.querySelectorAll('input[aria-invalid=true]')]
    .find(e => !except.includes(fieldOf(e)));
  const refuse = (ev, except = []) => {
    const bad = window.moodgenInvalid(except);
    if (!bad) return;
    ev.stopImmediatePropagation();
    ev.preventDefault();
    bad.focus();
  };
  document.addEventListener('click', (ev) => {
    if (ev.target.closest?.('#generate, #live-play')) refuse(ev);
    else if (ev.target.closest?.('[id^=preset-]')) refuse(ev, ['valence', 'arousal']);
  }, true);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && ev.target.closest?.('#journey')) refuse(ev);
  }, true);
}
