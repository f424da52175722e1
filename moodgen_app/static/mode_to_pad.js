// The pad's mode ('point' or 'journey'), its path cleared; in journey mode the pad says what to do.
(mode, pad) => ({...pad, mode: mode, path: null,
                 hint: mode === 'journey' ? 'Drag a path across the pad: the music follows it over the duration.' : ''})
