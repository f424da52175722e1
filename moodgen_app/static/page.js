() => {
  // Gradio draws each spectrogram inside a button with an empty alt text: name both for screen readers.
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
  };
  new MutationObserver(label).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                       attributeFilter: ['src']});
}
