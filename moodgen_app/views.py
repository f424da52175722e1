"""What the app shows for a result, as pure functions: the spectrogram PNG, file names, the summary's lines, and how
far the judge can be trusted (from the held-out numbers its checkpoint records)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import librosa
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from moodgen.atlas import AtlasMatch
from moodgen.audio import db_from_normalized
from moodgen.config import MelParams
from moodgen.generation import Generation
from moodgen.mood import quadrant_by_number, quadrant_of

AXES = ("valence", "arousal")


# matplotlib's "magma" at 17 even steps (interpolated between): the colour map without importing matplotlib
MAGMA = np.array([[int(h[i:i + 2], 16) for i in (0, 2, 4)] for h in (
    "000004 0a0822 1d1147 36106b 51127c 6a1c81 832681 9c2e7f b73779 d0416f e75263 f56b5c fc8961 fea772 fec488 "
    "fde2a3 fcfdbf").split()], dtype=np.float32)
LUT = np.stack([np.interp(np.linspace(0, 16, 256), np.arange(17), MAGMA[:, c]) for c in range(3)], 1).astype(np.uint8)
SIZE, PLOT, BAR = (640, 340), (83, 34, 518, 289), (531, 34, 547, 289)  # canvas; plot and colour bar boxes (px)


def nice_step(span: float, most: int) -> float:
    """The smallest of 1, 2, 5 x 10^k giving at most `most` ticks over `span`."""
    step = 10.0 ** np.floor(np.log10(max(span, 1e-9) / most))
    return next(step * m for m in (1, 2, 5, 10) if span / (step * m) <= most)


def mel_png(mel: np.ndarray, mel_params: MelParams, title: str, seconds: float) -> bytes:
    """A normalized log-mel (M, T) drawn as a PNG: time in s, mel-spaced Hz axis, absolute dB colour bar.

    Every image uses the same colour scale (MelParams' dB range), size and `seconds` as the time span, so a
    generated clip and a real one can be compared side by side. Drawn with numpy and Pillow: matplotlib took
    0.15 s an image and ~0.5 s of the app's start to import.
    """
    p = mel_params
    db = db_from_normalized(np.clip(np.asarray(mel, dtype=np.float32), -1.0, 1.0), p)
    level = np.clip((db - p.db_min) / (p.db_max - p.db_min) * 255, 0, 255).astype(np.uint8)
    image = Image.new("RGB", SIZE, "white")
    (x0, y0, x1, y1), (b0, _, b1, _) = PLOT, BAR
    clip_s = mel.shape[1] * p.hop_length / p.sample_rate
    width = max(1, round((x1 - x0) * min(clip_s / seconds, 1.0)))
    shown_frames = max(1, min(mel.shape[1], round(mel.shape[1] * seconds / clip_s)))
    rgb = Image.fromarray(LUT[level[::-1, :shown_frames]])  # low bands at the bottom
    image.paste(rgb.resize((width, y1 - y0), Image.Resampling.BILINEAR), (x0, y0))
    bar = Image.fromarray(LUT[np.linspace(255, 0, y1 - y0).astype(np.uint8)][:, None].repeat(b1 - b0, 1))
    image.paste(bar, (b0, y0))
    draw, font = ImageDraw.Draw(image), ImageFont.load_default(size=12)
    draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline="black")
    draw.rectangle((b0 - 1, y0 - 1, b1, y1), outline="black")
    step = nice_step(seconds, 8)
    for t in np.arange(0.0, seconds + 1e-6, step):
        x = x0 + (x1 - x0) * t / seconds
        draw.line((x, y1, x, y1 + 4), fill="black")
        draw.text((x, y1 + 6), f"{t:g}", fill="black", font=font, anchor="mt")
    half = (librosa.hz_to_mel(p.fmax) - librosa.hz_to_mel(p.fmin)) / (p.n_mels + 1) / 2  # rows span band centres
    low, high = librosa.hz_to_mel(p.fmin) + half, librosa.hz_to_mel(p.fmax) - half
    for hz in (512, 1024, 2048, 4096, 8192):
        if p.fmin <= hz <= p.fmax:
            y = y1 - (y1 - y0) * (librosa.hz_to_mel(hz) - low) / (high - low)
            draw.line((x0 - 4, y, x0, y), fill="black")
            draw.text((x0 - 6, y), f"{hz}", fill="black", font=font, anchor="rm")
    for d in np.arange(np.ceil(p.db_min / 20) * 20, p.db_max + 1e-6, 20):
        y = y1 - (y1 - y0) * (d - p.db_min) / (p.db_max - p.db_min)
        draw.line((b1, y, b1 + 4, y), fill="black")
        draw.text((b1 + 6, y), f"{d:+.0f} dB", fill="black", font=font, anchor="lm")
    draw.text(((x0 + x1) / 2, y0 - 8), title, fill="black", font=font, anchor="ms")
    draw.text(((x0 + x1) / 2, SIZE[1] - 12), "time (s)", fill="black", font=font, anchor="ms")
    label = Image.new("RGB", (y1 - y0, 14), "white")
    ImageDraw.Draw(label).text(((y1 - y0) / 2, 7), "frequency (Hz, mel scale)", fill="black", font=font, anchor="mm")
    image.paste(label.rotate(90, expand=True), (8, y0))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def crop_frames(mel: np.ndarray, mel_params: MelParams, seconds: float) -> np.ndarray:
    """The first `seconds` of a mel (M, T) -> (M, T'), so a long real clip is drawn on the generated clip's axes."""
    return mel[:, : mel_params.frames_for(seconds)]


def keys_played(gen: Generation) -> list[str]:
    """Every key a clip plays in, in order (a journey or a live recording may change key)."""
    return [k for _, k in gen.key_changes] or ([gen.key] if gen.key else [])


def instrument_of(gen: Generation) -> str | None:
    """The instrument that played the notes (engines that play notes), as the menu shows it."""
    instrument = gen.render.get("instrument")
    return instrument.replace("-", " ") if instrument else None


def clip_stem(gen: Generation) -> str:
    """A file name that says what the clip is: engine, kind, mood(s), length, seed, every key, instrument."""
    where = (f"journey_v{gen.waypoints[0][1]:+.2f}_a{gen.waypoints[0][2]:+.2f}_to_" if gen.waypoints else
             "live_to_" if gen.stream else "")
    keys = "_then_".join(k.replace(" ", "-") for k in keys_played(gen))
    instrument = gen.render.get("instrument")
    return (f"moodgen_{gen.engine}_{where}v{gen.valence:+.2f}_a{gen.arousal:+.2f}_{gen.seconds:g}s_seed{gen.seed}"
            + (f"_{keys}" if keys else "") + (f"_{instrument}" if instrument else ""))


def mel_title(gen: Generation) -> str:
    start = f"V {gen.waypoints[0][1]:+.2f} / A {gen.waypoints[0][2]:+.2f} to " if gen.waypoints else ""
    kind = "journey" if gen.waypoints else "played live" if gen.stream else "generated"
    return f"{kind} by the {gen.engine} engine: {start}V {gen.valence:+.2f} / A {gen.arousal:+.2f}"


def safe_name(text: str) -> str:
    """A file-name-safe version of an atlas clip id (ids come from data files)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


@dataclass(frozen=True)
class JudgeTrust:
    """The judge's held-out agreement with human-labelled real clips, per axis."""

    error: tuple[float, float]  # mean absolute error on the pad's [-1, 1] scale: valence, arousal
    spearman: tuple[float, float]
    n: int

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> JudgeTrust | None:
        """From a judge checkpoint's provenance (its test split); None when the checkpoint records none. The error
        is the file's `uncertainty` (pad scale, written by train.judge_head), else, in files from before it, the
        test mean absolute error, recorded on the [0, 1] scale: twice that on the pad."""
        provenance = metadata.get("provenance", {})
        test = provenance.get("test") or {}
        try:
            spread = provenance.get("uncertainty") or {a: 2.0 * float(test[f"mae_unit_{a}"]) for a in AXES}
            return cls(tuple(float(spread[a]) for a in AXES),
                       tuple(float(test[f"spearman_{a}"]) for a in AXES), int(test["n"]))
        except (KeyError, TypeError, ValueError):
            return None

    @staticmethod
    def words(spearman: float) -> str:
        return "reliable" if spearman >= 0.8 else "rough" if spearman >= 0.5 else "barely informative"

    def explanation(self) -> str:
        (ev, ea), (sv, sa) = self.error, self.spearman
        return ("The **judge** is a small network trained only on real piano recordings; it estimates where a clip "
                "lands on the pad and never trains or picks the generator. On "
                f"{self.n} held-out real clips its **arousal** is {self.words(sa)} (Spearman {sa:.2f} with the "
                f"labels, typical error ±{ea:.2f}) and its **valence** {self.words(sv)} (Spearman {sv:.2f}, "
                f"typical error ±{ev:.2f}). The shaded ellipse around ◆ on the pad spans those typical errors: "
                "where the judge disagrees with the target, trust its up-down reading more than its left-right one.")


def judge_line(judged: tuple[float, float], trust: JudgeTrust | None) -> str:
    if trust is None:
        return f"Judge: V {judged[0]:+.2f} / A {judged[1]:+.2f} (◆ on the pad)."
    (ev, ea), (sv, sa) = trust.error, trust.spearman
    return (f"Judge: V {judged[0]:+.2f} ± {ev:.2f} / A {judged[1]:+.2f} ± {ea:.2f} (◆ on the pad). On held-out "
            f"real songs its arousal is {trust.words(sa)} (Spearman {sa:.2f}), its valence {trust.words(sv)} "
            f"({sv:.2f}).")


def nearest_lines(gen: Generation, match: AtlasMatch, real_seconds: float | None) -> list[str]:
    """The nearest real clip: what it is and where it sits, whether it is shorter than the generated clip, and a
    warning when it carries another quadrant's label than the one asked for."""
    e = match.entry
    lines = [f"Nearest real clip by {match.by}: `{e.clip_id}` (▲ on the pad: V {e.valence:+.2f} / "
             f"A {e.arousal:+.2f}; distance {match.distance:.3f}) · {e.source} · {e.licence}."]
    if real_seconds is not None and real_seconds < gen.seconds - 0.05:
        lines.append(f"It is a {real_seconds:.0f} s excerpt, shorter than your {gen.seconds:g} s clip: its "
                     f"spectrogram stops at {real_seconds:.0f} s.")
    asked, found = quadrant_of(gen.valence, gen.arousal), quadrant_by_number(e.quadrant)
    if found != asked:
        lines.append(f"⚠ It sounds alike, but people labelled it **{found.name}**, not {asked.name} as asked."
                     if match.by == "sound" else
                     f"⚠ The nearest labelled clip is **{found.name}**, across the line from {asked.name}.")
    return lines


def summary_lines(gen: Generation, key_asked: bool) -> list[str]:
    key = f" · {gen.key} ({'as asked' if key_asked else 'drawn for the mood'})" if gen.key else ""
    key += "".join(f", {k} from {t:g} s" for t, k in gen.key_changes[1:])
    engine = f"{gen.engine} engine" + (f" playing {instrument_of(gen)}" if instrument_of(gen) else "")
    if gen.stream:
        (v0, a0), n = gen.stream["moods"][0], len(gen.stream["moods"])
        return [f"**Played live**: {gen.seconds:.0f} s in {n} chunks following the pad from {quadrant_of(v0, a0).name} "
                f"(V {v0:+.2f} / A {a0:+.2f}) to {quadrant_of(gen.valence, gen.arousal).name}, aimed at "
                f"V {gen.valence:+.2f} / A {gen.arousal:+.2f} at the end (the line on the pad) · {engine} "
                f"· seed {gen.seed}{key}."]
    if gen.waypoints:
        (_, v0, a0) = gen.waypoints[0]
        return [f"**Journey** of {gen.seconds:g} s from {quadrant_of(v0, a0).name} (V {v0:+.2f} / A {a0:+.2f}) "
                f"to {quadrant_of(gen.valence, gen.arousal).name}, aimed at V {gen.valence:+.2f} / "
                f"A {gen.arousal:+.2f} at the end, through {len(gen.waypoints)} waypoints (the line on the pad; "
                f"the ring on it follows the music) · {engine} · seed {gen.seed}{key}."]
    return [f"**{quadrant_of(gen.valence, gen.arousal).name.capitalize()}**, aimed at V {gen.valence:+.2f} / "
            f"A {gen.arousal:+.2f} · {gen.seconds:g} s · {engine} · seed {gen.seed}{key}."]
