"""The diagnosis thresholds: each default with its rationale — the runs it was fitted on,
the figures they gave and the command that reproduces them (the calibration set only;
docs/diagnosis-calibration.md has the sessions). diagnosis.diagnose takes overrides of
any of them over these (a study trying another value passes its own)."""

from __future__ import annotations

THRESHOLDS: dict[str, float] = {
    # A window whose largest loss exceeds its robust z-score of 6 at least this many times.
    "spike_count": 1,
    # ... acted on at once when one window has this many (a bad stretch of data, not one
    # heavy-tailed step); fewer wait for the next window to spike too. Fitted on the
    # calibration set's corrupt-text case, seeds 0-2: its healthy reference (clean code
    # read in order) has up to 3 in a window, the window that meets the bad region 19-20.
    "spike_burst": 8,
    # Divergence: the window's last tenth above this multiple of the best loss so far.
    "divergence_ratio": 1.5,
    # Exploding gradients: a window's largest norm over this multiple of its median (acted
    # on at once unless the clip in force cut it back within this multiple: see _gradients).
    "gradient_explosion_ratio": 50.0,
    # Not learning: the window's last tenth still at this fraction of the loss a predictor
    # that learned nothing scores (the trainer exports it: unigram entropy for text, the
    # noise variance for diffusion), from the second milestone on. At the second
    # milestone healthy runs sit at 0.79 (transformer) and 0.17 (DDPM); a transformer at 25x
    # its LR without warm-up at 0.96, a DDPM at 50x its LR at 1.0.
    "baseline_ratio": 0.92,
    # The first window starts from random weights, so there only a loss within 3% of the
    # baseline counts (healthy first windows end at 0.87 and 0.25 of it; the DDPM at 50x
    # its LR at 0.999).
    "baseline_ratio_first": 0.97,
    # A GAN on 2-D data is not learning when, from its second milestone on, no sample
    # lies near any mode while its weights still move this much per step (|dw|/|w|, the
    # largest component). On the ring at 10x the LR: 0 modes and 0.022 at step 1,000; a
    # healthy run covers 6 modes at 0.004; one at a tenth of the healthy LR, slow but
    # learning, also covers none yet, at 0.0013 — a rate too low is not a rate too high.
    # Raised from 0.01 on the calibration zoo's 25-mode grid (session 41, Intel Xeon;
    # `python -m bench.trace calibration gan-grid25-rate-10x-too-high --fields
    # update_ratio,high_quality_ratio`, seeds 0-5): a grid run has no sample near a mode
    # until ~2,000 steps even when healthy, so this figure alone decides there. At 1,000
    # steps the healthy rate moves 0.0068-0.0076, twice it (which ends as well as the
    # healthy run: 18, 15, 23 of 25 against 19, 13, 19) 0.0046-0.0117 — and 0.01 read it as
    # far too high and restarted it at a fifth of the healthy rate: 2 and 0 modes at the
    # end — 10x 0.0134-0.0224, the ring at 10x 0.020.
    # Between twice the rate and ten times: 0.0125 (a thin margin, said so).
    "gan_update_ratio": 0.0125,
    # ... "no sample near any mode" as a share of the samples (the high-quality ratio),
    # not a count of modes: at 1,000 steps the 10x run above sat on 1 mode with 2.8% of
    # its samples near one on another CPU (Intel Xeon, session 21), and was missed; the
    # healthy run then has 20%. Judged from 1,000 steps trained on, in steps rather than
    # milestones: a healthy run's weights still move ~1% per step at 500 (its first
    # window), so with short intervals a second milestone comes too early.
    "gan_near_data": 0.05,
    "gan_not_learning_steps": 1000,
    # Plateau: relative improvement of the primary loss over the last three milestones.
    "plateau_improvement": 0.005,
    # GAN: the discriminator classifies this fraction of real and fake samples correctly.
    # Healthy ring runs stay at 0.61-0.76; minimax with a 10x discriminator LR sits at 0.85-0.90.
    "discriminator_accuracy": 0.82,
    # ... or, under the saturating (minimax) loss, a discriminator ahead (this accuracy)
    # of a generator whose weights move at most this fraction as fast as its own (update
    # ratio over update ratio). Fitted on the calibration zoo, seeds 0-2, every milestone
    # (`python -m bench.trace calibration gan-grid25-minimax-fast-discriminator --fields
    # discriminator_accuracy_ratio,update_ratio`, session 42, and the same with the rates
    # balanced, a scratch case): minimax with the discriminator at 10x, 0.72-0.80 at the
    # first milestone, the generator at 0.10-0.35 of the discriminator's pace throughout
    # (the ring case: 0.85-0.90, caught by the line above); minimax with equal rates, which
    # ends as well as the non-saturating reference (ring 8, 8, 3 of 8; grid 20, 19, 24 of
    # 25), at 0.50 or more of its pace wherever its discriminator reads 0.60 or more, and
    # at most 0.53 accurate wherever its generator is slower than 0.43. Geometric middle
    # of 0.35 and 0.50; the accuracy midway between 0.53 and 0.72.
    "saturating_discriminator_accuracy": 0.62,
    "starved_generator_ratio": 0.42,
    # Mode collapse on 2-D mixtures: sharp samples (this high-quality ratio or more) on
    # fewer than `modes_fraction` of the modes, or on `modes_lost_fraction` of them fewer
    # than at best (2 of the ring's 8, where it was fitted; written as a fraction so that
    # losing 2 of a 25-mode grid's modes, which a healthy run's swings do, is not a loss).
    # A healthy run passes through few-mode milestones too, but with blurry samples
    # (high-quality ratio 0.07-0.34 while it covers 2-5 of 8); a collapsed one is sharp.
    "modes_fraction": 0.75,
    "modes_lost_fraction": 0.25,
    "collapse_quality": 0.5,
    # A WGAN critic is unconstrained when the mean norm of its input gradient on
    # interpolates (the trainer's critic_gradient_norm) is at least this: its penalty
    # holds it near 1. Fitted on the calibration zoo's WGAN case, seeds 0-2, every
    # milestone (`python -m bench.trace calibration gan-wgan-without-penalty --fields
    # critic_gradient_norm`, session 40): with the penalty 0.95-1.04, without it 12.7-552
    # (41.9, 177, 55.2 at the first milestone). Their geometric middle.
    "critic_gradient_norm": 3.6,
    # Mode collapse on images: recall below this fraction of its best.
    "recall_fraction": 0.5,
    # FID regression: FID above this multiple of its best (after `fid_warmup` milestones).
    "fid_ratio": 1.25,
    "fid_warmup": 2,
    # ... and by more than this many standard errors of the difference (the trainer's
    # bootstrap over the generated samples): about a 2.5% chance that noise alone, with
    # no change in the model, is read as a regression. Not fitted: a textbook level.
    "fid_noise_z": 2.0,
    # Stale EMA: the sampling weights still hold this share of the random initialisation
    # (the product of the EMA decays so far). Healthy runs (warm-up) are at 1e-15 by their
    # first milestone; a raw 0.9999 still at 0.985 at step 150 and 0.86 at step 1,500.
    "ema_init_weight": 0.5,
    # Posterior collapse: fewer active units than this fraction of the latent dimensions,
    # and a held-out reconstruction at least this fraction of what a decoder ignoring the
    # latent scores (every pixel at its mean). Fitted on the calibration zoo (digits, seed
    # 0): both collapsed runs (KL weight 20; KL 5 with a 1,024-wide decoder) sit at
    # 1.00-1.01 of it from their first milestone; their healthy references end at 0.77
    # with 6 of 16 units active, and start at 0.97 with 15.
    "active_fraction": 0.25,
    "collapse_reconstruction_ratio": 0.95,
    # Overfitting: validation loss up this much from its best while training loss falls.
    "overfit_gap": 0.05,
    # Attention entropy collapse: the mean over layers of attention entropy over uniform
    # attention's below this. Calibration zoo, transformer at 10x its rate with warm-up
    # and clipping: 0.07 at its first milestone, 0.02-0.04 after; at 25x without warm-up
    # 0.15, then 0.03-0.04 (NotLearning finds it first); their healthy reference 0.88 at
    # the first milestone, 0.62 at the fourth (docs/diagnosis-calibration.md).
    "attention_entropy_ratio": 0.15,
    # A rate too high for the model: its weights grew to this multiple of their initial
    # norm in their first 100 updates at the full rate (the trainer's weight_growth, taken
    # past any warm-up; acted on for diffusion and VAE only: weight_growth.ACTED_ON).
    # Fitted on the calibration zoo, seeds 0-2 (`python -m bench.weight_growth --set
    # calibration`; docs/diagnosis-calibration.md, session 29):
    # healthy runs 1.02 (DDPM), 1.05 (VAE), 1.04-1.05 (ring GAN), 1.16-1.20 (transformer,
    # its warm-up's growth included), the other faults up to 1.12 (a minimax
    # discriminator at 5x the generator's rate); rates 10-50x too high 1.27-1.47 (the ring
    # GAN at 10x: its discriminator), 1.47-1.50 (DDPM at 10x), 2.5 (VAE at 20x), 2.6-2.8
    # (transformer at 10x with warm-up), 4.9-5.8 (transformer at 25x), 5.6 (DDPM at 50x).
    # Their geometric middle: 1.23 (1.2 first, before the healthy transformer on clean
    # code, 1.187-1.196, was measured at its own warm-up's end).
    "weight_growth": 1.23,
    "gpu_underutilized": 0.3,
    "gpu_memory_pressure": 0.95,
}
