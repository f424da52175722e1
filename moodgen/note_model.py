"""The note engine's model: an autoregressive causal CNN over piano-roll frames, conditioned on (valence, arousal).

Each frame (1/fps s) it predicts, for every key, an onset probability, a "keeps sounding" probability and the onset
velocity, given the earlier frames (a receptive field of `receptive_field` frames) and the mood. Binary
cross-entropy on rare note events learns far faster on a CPU than a flow model over the whole roll (which, in our
runs, collapsed to the all-silent mean), and dilated causal convolutions train in parallel over time. The mood
enters as Fourier features -> MLP, added inside every layer; dropping it on a fraction of training examples gives
classifier-free guidance on the logits at sampling time. With `key_conditioning` a musical key (see `moodgen.keys`)
is added to the mood and dropped with it.

Shapes: roll x (B, 2K, T) encoded as in `moodgen.midi.encode_roll`; mood (B, 2); key (B,) int64; drop (B,) bool;
logits (B, 3K, T) = onset, sounding and velocity logits (K each); logits at t depend on frames < t only.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moodgen.checkpoint import Component
from moodgen.conditioning import KeyCondition, condition_embedding, mood_mlp
from moodgen.config import RollParams, check_ranges
from moodgen.keys import in_scale
from moodgen.midi import ONSET_FLOOR
from moodgen.threads import one_blas_thread

ONSET_THRESHOLD = (ONSET_FLOOR - 1.0) / 2.0  # midway between "no onset" (-1) and the weakest onset


@dataclass(frozen=True)
class NoteModelConfig:
    n_keys: int = 88
    channels: int = 128
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 1, 2, 4, 8, 16, 32)
    cond_dim: int = 128
    mood_frequencies: int = 8
    dropout: float = 0.1
    key_conditioning: bool = False  # condition on a musical key as well as the mood

    def __post_init__(self) -> None:
        check_ranges(self, {"n_keys": (1, 128), "channels": (1, 4096), "dilations": (1, 4096), "cond_dim": (1, 4096),
                            "mood_frequencies": (0, 32)})
        if self.n_keys < 1 or self.channels < 1 or not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"invalid NoteModelConfig sizes: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def receptive_field(self) -> int:
        return 1 + sum(self.dilations)


class CausalBlock(nn.Module):
    """Gated dilated causal convolution (kernel 2) with the condition added; (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, dilation: int, cond_dim: int, dropout: float):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, 2 * channels, 2, dilation=dilation)
        self.cond = nn.Linear(cond_dim, 2 * channels)
        self.res = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        a, g = (self.conv(F.pad(h, (self.dilation, 0))) + self.cond(cond)[:, :, None]).chunk(2, dim=1)
        return h + self.res(self.dropout(torch.tanh(a) * torch.sigmoid(g)))

    def step_weights(self) -> tuple[torch.Tensor, ...]:
        """The weights `block_step` takes: the conv's taps for t - dilation and for t, each as a contiguous (C, 2C)
        matrix (a transposed tap view would be copied by every matmul), the conv bias (2C,), the residual weight
        transposed (C, C) and the residual bias (C,)."""
        taps = self.conv.weight
        return (taps[:, :, 0].T.contiguous(), taps[:, :, 1].T.contiguous(), self.conv.bias,
                self.res.weight[:, :, 0].T, self.res.bias)


def block_step(h: torch.Tensor, past: torch.Tensor, weights: tuple[torch.Tensor, ...],
               cond_projection: torch.Tensor) -> torch.Tensor:
    """One frame of a `CausalBlock`: h (B, C) now and `past` (B, C) = its input `dilation` frames ago -> (B, C).

    `weights` = `CausalBlock.step_weights()`, `cond_projection` = the block's `cond(cond)` (B, 2C). In-place
    additions and direct addmm save allocations and dispatches, not arithmetic: sampled rolls stay bit-identical."""
    tap_past, tap_now, conv_bias, res_weight, res_bias = weights
    x = torch.mm(past, tap_past)
    x += torch.mm(h, tap_now)
    x += conv_bias
    x += cond_projection
    c = h.shape[1]
    gated = torch.tanh(x[:, :c])
    gated *= torch.sigmoid(x[:, c:])
    return h + torch.addmm(res_bias, gated, res_weight)


@dataclass(frozen=True)
class StepContext:
    """What `NoteModel.step` needs besides the frame and the queues, made once per clip rather than every frame:
    each block's `step_weights()` and its condition projection (B, 2C). For a condition that changes from frame to
    frame, `with_condition` swaps the projections and keeps the weights."""

    weights: tuple[tuple[torch.Tensor, ...], ...]
    cond_projections: tuple[torch.Tensor, ...]

    @staticmethod
    def build(model: NoteModel, cond: torch.Tensor) -> StepContext:
        """cond (B, cond_dim) -> the context of `model` for that condition."""
        return StepContext(tuple(b.step_weights() for b in model.blocks), ()).with_condition(model, cond)

    def with_condition(self, model: NoteModel, cond: torch.Tensor) -> StepContext:
        """The same weights with each block's projection of cond (B, cond_dim)."""
        return replace(self, cond_projections=tuple(b.cond(cond) for b in model.blocks))


class NoteModel(nn.Module, Component):
    kind = "note_model"
    config_class = NoteModelConfig

    def __init__(self, config: NoteModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.inp = nn.Conv1d(2 * c.n_keys, c.channels, 1)
        self.mood_mlp = mood_mlp(c.mood_frequencies, c.cond_dim)
        self.null_mood = nn.Parameter(torch.zeros(c.cond_dim))
        self.key = KeyCondition(c.cond_dim) if c.key_conditioning else None
        self.blocks = nn.ModuleList(CausalBlock(c.channels, d, c.cond_dim, c.dropout) for d in c.dilations)
        self.out = nn.Sequential(nn.SiLU(), nn.Conv1d(c.channels, 3 * c.n_keys, 1))

    def mood_embedding(self, mood: torch.Tensor, drop: torch.Tensor, key: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 2), (B,) bool, key (B,) -> (B, cond_dim); dropped rows get the learned null embedding."""
        return condition_embedding(self.mood_mlp, self.null_mood, self.key, self.config.mood_frequencies, mood, drop,
                                   key)

    def logits(self, prev: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Frames (B, 2K, T) -> logits (B, 3K, T) for the frame after each one."""
        h = self.inp(prev)
        for block in self.blocks:
            h = block(h, cond)
        return self.out(h)

    def empty_queues(self, batch: int) -> list[list[torch.Tensor]]:
        """Each block's inputs of the last `dilation` frames (fast-WaveNet queues), zero like the causal padding."""
        zeros = torch.zeros(batch, self.config.channels, device=self.inp.weight.device)
        return [[zeros] * block.dilation for block in self.blocks]

    def step(self, frame: torch.Tensor, queues: list[list[torch.Tensor]], cond: torch.Tensor,
             context: StepContext | None = None) -> torch.Tensor:
        """Incremental `logits`: the previous frame (B, 2K) -> logits (B, 3K) for the next one; updates `queues`.

        `context` = `StepContext.build(self, cond)`, made once per clip by a caller that steps many frames; without
        it each call builds its own (same result, slower)."""
        context = context or StepContext.build(self, cond)
        h = F.linear(frame, self.inp.weight[:, :, 0], self.inp.bias)
        for queue, weights, projection in zip(queues, context.weights, context.cond_projections):
            queue.append(h)
            h = block_step(h, queue.pop(0), weights, projection)
        # One row at a time: a 1x1 conv of one row runs inline, where a batch takes torch's multi-threaded path
        # (an OpenMP region costing more than the product itself, and far more on a busy machine). Each row's
        # arithmetic is the one-thread batch's, so rolls stay the same.
        act, conv = self.out
        h = act(h)[:, :, None]
        return torch.cat([F.conv1d(h[i:i + 1], conv.weight, conv.bias) for i in range(len(h))])[..., 0]

    def forward(self, x: torch.Tensor, mood: torch.Tensor, drop: torch.Tensor,
                key: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits for every frame of x (B, 2K, T) -> (B, 3K, T); frame t sees frames < t."""
        prev = F.pad(x, (1, 0), value=-1.0)[..., :-1]  # a silent frame before the first
        return self.logits(prev, self.mood_embedding(mood, drop, key))


def targets_from_encoded(x: torch.Tensor, n_keys: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encoded roll (B, 2K, T) -> onset (B, K, T) {0,1}, sounding (B, K, T) {0,1}, velocity in [0, 1] (B, K, T)."""
    onset = (x[:, n_keys:] > ONSET_THRESHOLD).float()
    sounding = (x[:, :n_keys] > 0).float()
    velocity = ((x[:, n_keys:] - ONSET_FLOOR) / (1 - ONSET_FLOOR)).clamp(0, 1)
    return onset, sounding, velocity


def note_loss(model: NoteModel, x: torch.Tensor, mood: torch.Tensor, cond_dropout: float,
              generator: torch.Generator | None = None, key: torch.Tensor | None = None) -> torch.Tensor:
    """BCE on onsets and sounding keys, plus velocity BCE where onsets are; x (B, 2K, T), mood (B, 2), key (B,)."""
    k = model.config.n_keys
    src = generator.device if generator is not None else torch.device("cpu")  # where the draw happens
    drop = (torch.rand(x.shape[0], generator=generator, device=src) < cond_dropout).to(x.device)
    logits = model(x, mood, drop, key)
    onset, sounding, velocity = targets_from_encoded(x, k)
    loss = F.binary_cross_entropy_with_logits(logits[:, :k], onset)
    loss = loss + F.binary_cross_entropy_with_logits(logits[:, k:2 * k], sounding)
    vel = F.binary_cross_entropy_with_logits(logits[:, 2 * k:], velocity, reduction="none")
    return loss + (vel * onset).sum() / onset.sum().clamp_min(1.0)


@dataclass(frozen=True)
class SamplerConfig:
    """How `NoteSampler` turns the model's per-key probabilities into notes; the defaults are the shipped settings,
    chosen with the realism report and the mood judge (docs/realism.md). `PLAIN` (all zero): independent draws per
    key and the velocity head's value, as the model was trained to predict them."""

    key_bias: float = 1.5  # onset logit taken off keys outside the conditioned key's scale (soft, not a mask)
    chord_correlation: float = 0.0  # correlation of one frame's onset draws (Gaussian copula); marginals unchanged
    velocity_spread: float = 8.0  # SD (MIDI velocity) of each onset's velocity around the velocity head's value
    dynamics_spread: float = 8.0  # SD (MIDI velocity) of a slow loudness curve shared by every onset of a clip
    dynamics_seconds: float = 4.0  # time constant of that curve (an Ornstein-Uhlenbeck process)
    guidance: float | None = 2.5  # the engine's default guidance; None: the one the checkpoint's export chose

    def __post_init__(self) -> None:
        if not 0.0 <= self.key_bias <= 20.0:
            raise ValueError(f"key_bias must be in [0, 20], got {self.key_bias}")
        if not 0.0 <= self.chord_correlation < 1.0:
            raise ValueError(f"chord_correlation must be in [0, 1), got {self.chord_correlation}")
        if not (0.0 <= self.velocity_spread <= 64.0 and 0.0 <= self.dynamics_spread <= 64.0):
            raise ValueError(f"velocity_spread and dynamics_spread must be in [0, 64]: {self}")
        if self.dynamics_seconds <= 0:
            raise ValueError(f"dynamics_seconds must be positive, got {self.dynamics_seconds}")
        if self.guidance is not None and not 0.0 <= self.guidance <= 10.0:
            raise ValueError(f"guidance must be in [0, 10] or None, got {self.guidance}")

    def record(self) -> dict[str, float]:
        """The settings for a clip's JSON."""
        return asdict(self)


PLAIN = SamplerConfig(key_bias=0.0, velocity_spread=0.0, dynamics_spread=0.0, guidance=None)  # nothing added
ROLL = RollParams()


@torch.no_grad()
def sample_roll(model: NoteModel, mood: torch.Tensor, frames: int, guidance: float = 2.0, temperature: float = 1.0,
                seed: int = 0, key: torch.Tensor | None = None, sampler: SamplerConfig = PLAIN,
                roll: RollParams = ROLL) -> tuple[np.ndarray, np.ndarray]:
    """Sample rolls frame by frame; mood (B, 2), key (B,) -> (active, onset), each (B, T, K) uint8 velocities.

    Guidance mixes the conditional and unconditional onset and sounding logits (1: plain conditional, 0: which notes
    play is unconditional). Velocities always come from the conditional velocity head: it predicts a value, not a
    probability, and extrapolating it would push velocities past the corpus range; so loudness follows the mood
    even at guidance 0. A key sounds where it starts, or where it was sounding and the model keeps it. Randomness
    comes from a CPU generator seeded with `seed`, so the same inputs give the same rolls. No process-wide setting
    (such as the torch thread count) is touched: requests may run at once. `sampler` adds what `SamplerConfig` says
    (its key bias needs `key`); `roll` places the keys' pitches.
    """
    state = NoteSampler(model, guidance, seed, temperature, batch=mood.shape[0], config=sampler, roll=roll)
    return state.run(frames, state.condition(mood, key), None if key is None else key.cpu().numpy())


class NoteSampler:
    """The sampling loop of `sample_roll`, keeping its state between calls (the model's queues, the last frame, the
    sounding velocities, the random generator), so a clip can go on and its condition can change from frame to
    frame. A condition (2B, D) holds the B conditional embeddings, then the B unconditional ones."""

    def __init__(self, model: NoteModel, guidance: float, seed: int, temperature: float = 1.0, batch: int = 1,
                 config: SamplerConfig = PLAIN, roll: RollParams = ROLL):
        model.eval()
        self.model, self.guidance, self.temperature, self.batch = model, guidance, temperature, batch
        self.config, self.pitches = config, roll.lowest_pitch + np.arange(model.config.n_keys)
        self.dynamics_decay = float(np.exp(-1.0 / (roll.fps * config.dynamics_seconds)))  # per frame
        self.dynamics = np.zeros((batch, 1))  # the slow loudness curve's value now, in velocity units
        self.device = next(model.parameters()).device
        k = model.config.n_keys
        self.weights = tuple(b.step_weights() for b in model.blocks)
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.queues = model.empty_queues(2 * batch)
        self.frame = torch.full((2 * batch, 2 * k), -1.0, device=self.device)  # the silent frame before the first
        self.velocity = np.zeros((batch, k), dtype=np.uint8)  # of each sounding key, 0 when silent
        self.onset_code = (ONSET_FLOOR + (1 - ONSET_FLOOR) * torch.arange(128.0) / 127.0).numpy()  # velocity -> code

    @torch.no_grad()
    def condition(self, mood: torch.Tensor, key: torch.Tensor | None) -> torch.Tensor:
        """Moods (B, 2) and keys (B,) -> the condition (2B, D)."""
        b = mood.shape[0]
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(self.device)
        return self.model.mood_embedding(torch.cat([mood, mood]).to(self.device, torch.float32), drop,
                                         None if key is None else torch.cat([key, key]))

    def frame_conditions(self, moods: torch.Tensor, keys: torch.Tensor | None) -> torch.Tensor:
        """A single clip's per-frame moods (T, 2) and keys (T,) -> conditions (T, 2, D)."""
        both = self.condition(moods, keys)
        return torch.stack([both[:len(moods)], both[len(moods):]], dim=1)

    @torch.no_grad()
    def contexts(self, frames: int, conditions: torch.Tensor) -> Iterator[StepContext]:
        """The step context of each frame: one for a condition (2B, D), one per frame for conditions (T, 2B, D),
        every block's projections made in one product per call."""
        if conditions.ndim == 2:
            context = StepContext(self.weights, tuple(b.cond(conditions) for b in self.model.blocks))
            yield from (context for _ in range(frames))
            return
        flat = conditions.flatten(0, 1)
        projections = [b.cond(flat).unflatten(0, conditions.shape[:2]) for b in self.model.blocks]
        for t in range(frames):
            yield StepContext(self.weights, tuple(p[t] for p in projections))

    @torch.no_grad()
    def prime(self, frames: np.ndarray, conditions: torch.Tensor, sounding: np.ndarray) -> None:
        """Teacher-force known frames (T, 2K) (encoded, one clip) through the model as if sampled, with conditions
        (T, 2, D); `sounding` (K,) = the last frame's velocities. After a receptive field of frames the state is
        what sampling them would have left."""
        known = torch.from_numpy(np.asarray(frames, np.float32)).to(self.device)
        with one_blas_thread():
            for frame, context in zip(known, self.contexts(len(known), conditions)):
                self.model.step(self.frame, self.queues, None, context)
                self.frame = frame.expand(2 * self.batch, -1)
        self.velocity = np.broadcast_to(np.asarray(sounding, np.uint8), self.velocity.shape).copy()

    @torch.no_grad()
    def run(self, frames: int, conditions: torch.Tensor,
            keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sample `frames` more frames for a condition (2B, D) or per-frame conditions (frames, 2B, D) -> (active,
        onset), each (B, frames, K) uint8 velocities. `keys`: the key of each clip (B,) or, for one clip, of each
        frame (frames,), for the key bias (None: no bias)."""
        b, k, dev = self.batch, self.model.config.n_keys, self.device
        # torch's CPU generator draws serially, so one draw per call equals a draw per frame
        uniform = torch.rand(frames, 2, b, k, generator=self.generator).numpy()
        onset_draw = self.onset_uniforms(uniform[:, 0])
        off_key = self.off_key_bias(keys, frames)
        velocity_noise = self.velocity_noise(frames)
        active = np.zeros((b, frames, k), dtype=np.uint8)
        onset = np.zeros_like(active)
        current_vel = self.velocity
        with one_blas_thread():  # tiny products: a second thread costs more than it saves (moodgen.threads)
            for t, context in enumerate(self.contexts(frames, conditions)):
                logits = self.model.step(self.frame, self.queues, None, context).cpu()
                lc, lu = logits[:b], logits[b:]
                guided = (lu + self.guidance * (lc - lu)) / self.temperature
                onset_logits = guided[:, :k] if off_key is None else guided[:, :k] - off_key[t]
                p_onset, p_sound = torch.sigmoid(onset_logits).numpy(), torch.sigmoid(guided[:, k:2 * k]).numpy()
                vel = 1 + torch.sigmoid(lc[:, 2 * k:]).numpy() * 126
                if velocity_noise is not None:
                    vel = np.clip(vel + velocity_noise[t], 1, 127)
                new = onset_draw[t] < p_onset
                sounding = new | ((current_vel > 0) & (uniform[t, 1] < p_sound))
                current_vel = np.where(new, vel.round().astype(np.uint8), np.where(sounding, current_vel, 0))
                onset[:, t] = np.where(new, current_vel, 0)
                active[:, t] = current_vel
                enc = np.concatenate([np.where(sounding, 1.0, -1.0).astype(np.float32),
                                      np.where(new, self.onset_code[current_vel], -1.0).astype(np.float32)], axis=1)
                self.frame = torch.from_numpy(np.concatenate([enc, enc])).to(dev)
        self.velocity = current_vel
        return active, onset

    def onset_uniforms(self, uniform: np.ndarray) -> np.ndarray:
        """The draws (frames, B, K) that onsets are tested against: `uniform` itself, or with a chord correlation
        rho, Phi(sqrt(rho) s + sqrt(1 - rho) e_k) with s shared by the frame's keys (a Gaussian copula): each key
        keeps its onset probability, but the keys of one frame start together or not at all more often."""
        rho = self.config.chord_correlation
        if rho == 0:
            return uniform
        normal = torch.randn(*uniform.shape[:2], uniform.shape[2] + 1, generator=self.generator)
        return torch.special.ndtr(rho ** 0.5 * normal[..., :1] + (1 - rho) ** 0.5 * normal[..., 1:]).numpy()

    def off_key_bias(self, keys: np.ndarray | None, frames: int) -> torch.Tensor | None:
        """(frames, B, K) the logit taken off each key's onset: key_bias where its pitch is outside the scale of
        the clip's key at that frame; None without a bias or keys."""
        if self.config.key_bias == 0 or keys is None:
            return None
        keys = np.asarray(keys).reshape(-1)
        if len(keys) == self.batch:
            keys = np.broadcast_to(keys, (frames, self.batch))
        elif self.batch == 1 and len(keys) == frames:
            keys = keys[:, None]
        else:
            raise ValueError(f"keys must be one per clip ({self.batch}) or, for one clip, one per frame ({frames}); "
                             f"got {len(keys)}")
        outside = ~in_scale(keys.reshape(-1), self.pitches).reshape(frames, self.batch, -1)
        return torch.from_numpy(outside.astype(np.float32) * self.config.key_bias)

    def velocity_noise(self, frames: int) -> np.ndarray | None:
        """(frames, B, K) velocity added to each onset: the slow curve shared by a clip's onsets plus each onset's
        own spread; None when both are 0. The curve goes on from one call to the next."""
        c = self.config
        if c.velocity_spread == 0 and c.dynamics_spread == 0:
            return None
        normal = torch.randn(frames, self.batch, len(self.pitches) + 1, generator=self.generator).numpy()
        decay, kick = self.dynamics_decay, c.dynamics_spread * np.sqrt(1 - self.dynamics_decay ** 2)
        curve = np.empty((frames, self.batch, 1))
        for t in range(frames):  # stationary: SD dynamics_spread at every frame once it has started
            self.dynamics = self.dynamics * decay + kick * normal[t, :, :1]
            curve[t] = self.dynamics
        return curve + c.velocity_spread * normal[..., 1:]
