"""The newcomer's main job: G3FA end to end on built-in synthetic talking heads (`job`).

It renders the heads (`g3fa_jax.synthetic`) into shards, fits an inverse renderer to their
ground-truth depth, trains (`g3fa_jax.train`), measures the held-out reconstruction and writes an
animation (`g3fa_jax.inference`, `g3fa_jax.animate`). `configs/synthetic.py` names it
(`config.job = 'synthetic_demo'`), so `python run_train.py --config=configs/synthetic.py
--workdir=runs/synthetic` runs it.
"""
