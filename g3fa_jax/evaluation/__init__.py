"""Evaluation protocols of the paper's Tables 1 and 2 (`run_eval.py`).

- same-identity reconstruction: every test video's first frame is the source, and every
  frame of the video is driven with absolute keypoints; L1, LPIPS, PSNR, SSIM, FID, AKD;
- cross-identity reenactment: a source frame animated by a driving video of another identity;
  FID, CSIM.
"""

from g3fa_jax.evaluation.config import eval_config

__all__ = ['eval_config']
