"""Evaluation metrics of the paper's tables, in JAX (one file per metric).

Pixel metrics (`pixel`: L1 on the 0-255 scale, PSNR; `ssim`) are formulas. Network metrics
(`lpips`, `inception` + `fid`, `arcface` + `csim`, and `akd` with the MTCNN face detector) run
pretrained PyTorch networks ported to Flax; their weights are converted once with
`python -m g3fa_jax.convert <lpips|inception|arcface> ...`.
"""
