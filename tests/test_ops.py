"""Array ops against independent NumPy transcriptions of PyTorch's formulas."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from g3fa_jax.ops import antialias, grid, grid_sample, resize

# ---------------------------------------------------------------------------------------------
# grid_sample: a per-pixel loop over torch's (generic, non-vectorised) CPU kernel formulas.


def _reflect_ref(coord: float, size: int) -> float:
  # reflect_coordinates(coord, twice_low=-1, twice_high=2 * size - 1), then clip to [0, size - 1].
  low, span = -0.5, float(size)
  coord = abs(coord - low)
  extra = math.fmod(coord, span)
  flips = math.floor(coord / span)
  coord = extra + low if flips % 2 == 0 else span - extra + low
  return min(max(coord, 0.0), size - 1.0)


def grid_sample_ref(x: np.ndarray, g: np.ndarray, padding_mode: str,
                    align_corners: bool = False) -> np.ndarray:
  b, h, w, c = x.shape
  _, ho, wo, _ = g.shape
  out = np.zeros((b, ho, wo, c), np.float64)
  for n in range(b):
    for i in range(ho):
      for j in range(wo):
        if align_corners:
          ix = (g[n, i, j, 0] + 1) / 2 * (w - 1)
          iy = (g[n, i, j, 1] + 1) / 2 * (h - 1)
        else:
          ix = ((g[n, i, j, 0] + 1) * w - 1) / 2
          iy = ((g[n, i, j, 1] + 1) * h - 1) / 2
        if padding_mode == 'reflection':
          ix, iy = _reflect_ref(ix, w), _reflect_ref(iy, h)
        x0, y0 = math.floor(ix), math.floor(iy)
        for xc, yc, weight in ((x0, y0, (x0 + 1 - ix) * (y0 + 1 - iy)),
                               (x0 + 1, y0, (ix - x0) * (y0 + 1 - iy)),
                               (x0, y0 + 1, (x0 + 1 - ix) * (iy - y0)),
                               (x0 + 1, y0 + 1, (ix - x0) * (iy - y0))):
          if 0 <= xc < w and 0 <= yc < h:
            out[n, i, j] += weight * x[n, yc, xc]
  return out


@pytest.mark.parametrize('padding_mode', ['zeros', 'reflection'])
def test_grid_sample_matches_reference(padding_mode):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 5, 7, 3)).astype(np.float32)
  g = rng.uniform(-1.8, 1.8, (2, 6, 4, 2)).astype(np.float32)
  g[0, 0, 0] = (-4.3, 3.9)  # far outside: zero, or reflected several times
  g[0, 0, 1] = (1.0, -1.0)  # exact corners
  g[1, 5, 3] = (0.0, 0.0)
  got = np.asarray(grid_sample.grid_sample(jnp.asarray(x), jnp.asarray(g), padding_mode))
  want = grid_sample_ref(x.astype(np.float64), g.astype(np.float64), padding_mode)
  np.testing.assert_allclose(got, want, atol=2e-6, rtol=0)


def test_grid_sample_align_corners_matches_reference():
  rng = np.random.default_rng(3)
  x = rng.standard_normal((2, 5, 7, 3)).astype(np.float32)
  g = rng.uniform(-1.3, 1.3, (2, 6, 4, 2)).astype(np.float32)
  g[0, 0, 1] = (1.0, -1.0)
  got = np.asarray(grid_sample.grid_sample(jnp.asarray(x), jnp.asarray(g), align_corners=True))
  want = grid_sample_ref(x.astype(np.float64), g.astype(np.float64), 'zeros', align_corners=True)
  np.testing.assert_allclose(got, want, atol=2e-6, rtol=0)


def test_coordinate_grid_is_an_identity_only_with_align_corners():
  """`make_coordinate_grid` puts pixel centres at -1 ... 1: an exact identity under
  align_corners=True; under the official align_corners=False it shrinks the map and fades the
  border into the zero padding (why configs/synthetic.py sets warp_align_corners)."""
  x = jnp.asarray(np.random.default_rng(4).random((1, 6, 9, 2)).astype(np.float32))
  g = grid.make_coordinate_grid((6, 9))[None]
  np.testing.assert_allclose(np.asarray(grid_sample.grid_sample(x, g, align_corners=True)),
                             np.asarray(x), atol=1e-6)
  official = np.asarray(grid_sample.grid_sample(x, g))
  assert np.abs(official - np.asarray(x)).max() > 0.1


def test_grid_sample_identity_grid_is_identity():
  x = np.random.default_rng(1).random((1, 6, 9, 2)).astype(np.float32)
  # Pixel centres under align_corners=False: (2i + 1) / w - 1.
  xs = (2 * np.arange(9) + 1) / 9 - 1
  ys = (2 * np.arange(6) + 1) / 6 - 1
  g = np.stack(np.meshgrid(xs, ys), -1)[None].astype(np.float32)
  got = grid_sample.grid_sample(jnp.asarray(x), jnp.asarray(g))
  np.testing.assert_allclose(np.asarray(got), x, atol=1e-6)


@pytest.mark.parametrize('padding_mode', ['zeros', 'reflection'])
def test_grid_sample_gradients_match_finite_differences(padding_mode):
  rng = np.random.default_rng(2)
  with jax.enable_x64(True):
    x = jnp.asarray(rng.standard_normal((1, 4, 5, 2)))
    # Keep away from pixel centres and the reflection folds, where the map has kinks.
    g = jnp.asarray(rng.uniform(-1.3, 1.3, (1, 3, 3, 2)))
    g = g.at[0, 0, 0].set(jnp.array([-1.21, 0.13]))
    weights = jnp.asarray(rng.standard_normal((1, 3, 3, 2)))

    def loss(x, g):
      return jnp.sum(grid_sample.grid_sample(x, g, padding_mode) * weights)

    grad_x, grad_g = jax.grad(loss, argnums=(0, 1))(x, g)
    assert np.all(np.isfinite(grad_x)) and np.all(np.isfinite(grad_g))
    eps = 1e-6
    for arg, grad in ((0, grad_x), (1, grad_g)):
      base = (x, g)[arg]
      numeric = np.zeros(base.shape)
      for idx in np.ndindex(base.shape):
        plus = [x, g]
        minus = [x, g]
        plus[arg] = base.at[idx].add(eps)
        minus[arg] = base.at[idx].add(-eps)
        numeric[idx] = (loss(*plus) - loss(*minus)) / (2 * eps)
      np.testing.assert_allclose(np.asarray(grad), numeric, atol=1e-6)


def test_grid_sample_gradients_finite_in_float32_outside():
  x = jnp.ones((1, 3, 3, 1))
  g = jnp.asarray([[[[-2.5, 0.2], [3.0, 3.0], [0.999, -1.0]]]], jnp.float32)
  for mode in ('zeros', 'reflection'):
    grads = jax.grad(lambda x, g: jnp.sum(grid_sample.grid_sample(x, g, mode)), (0, 1))(x, g)
    assert all(np.all(np.isfinite(np.asarray(v))) for v in grads)


def test_grid_sample_rejects_bad_padding():
  with pytest.raises(ValueError, match='padding_mode'):
    grid_sample.grid_sample(jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 2)), 'border')


# ---------------------------------------------------------------------------------------------
# Resizing: PyTorch's source-index formulas, written out per output pixel.


def _nearest_ref(x, size):
  h, w = size
  hin, win = x.shape[1:3]
  rows = [min(int(math.floor(i * (hin / h))), hin - 1) for i in range(h)]
  cols = [min(int(math.floor(j * (win / w))), win - 1) for j in range(w)]
  return x[:, rows][:, :, cols]


def _linear_source(dst, in_size, out_size, align_corners):
  if align_corners:
    return dst * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
  return max((dst + 0.5) * in_size / out_size - 0.5, 0.0)


def _bilinear_ref(x, size, align_corners):
  h, w = size
  hin, win = x.shape[1:3]
  out = np.zeros((x.shape[0], h, w, x.shape[3]))
  for i in range(h):
    sy = _linear_source(i, hin, h, align_corners)
    y0 = min(int(sy), hin - 1)
    y1, ly = min(y0 + 1, hin - 1), sy - y0
    for j in range(w):
      sx = _linear_source(j, win, w, align_corners)
      x0 = min(int(sx), win - 1)
      x1, lx = min(x0 + 1, win - 1), sx - x0
      out[:, i, j] = ((1 - ly) * ((1 - lx) * x[:, y0, x0] + lx * x[:, y0, x1])
                      + ly * ((1 - lx) * x[:, y1, x0] + lx * x[:, y1, x1]))
  return out


SIZES = [((8, 8), (2, 2)), ((7, 5), (13, 3)), ((4, 6), (8, 12)), ((5, 5), (5, 5)), ((3, 4), (1, 1))]


@pytest.mark.parametrize('in_size,out_size', SIZES)
def test_resize_nearest(in_size, out_size):
  x = np.random.default_rng(3).standard_normal((2, *in_size, 3)).astype(np.float32)
  got = resize.resize_nearest(jnp.asarray(x), out_size)
  np.testing.assert_array_equal(np.asarray(got), _nearest_ref(x, out_size))


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('in_size,out_size', SIZES)
def test_resize_bilinear(in_size, out_size, align_corners):
  x = np.random.default_rng(4).standard_normal((2, *in_size, 3)).astype(np.float32)
  got = resize.resize_bilinear(jnp.asarray(x), out_size, align_corners=align_corners)
  want = _bilinear_ref(x.astype(np.float64), out_size, align_corners)
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def test_upsample_nearest2x():
  x = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
  got = np.asarray(resize.upsample_nearest2x(jnp.asarray(x)))
  assert got.shape == (2, 6, 8, 2)
  np.testing.assert_array_equal(got, _nearest_ref(x, (6, 8)))


# ---------------------------------------------------------------------------------------------
# Anti-aliased downsampling and grids.


def test_antialias_kernel_matches_official_buffer(official_fixture):
  kernel = antialias.gaussian_kernel(0.25)
  buffer = official_fixture['param/kp_detector/down.weight']
  assert buffer.shape == (3, 1, 13, 13) and kernel.shape == (13, 13)
  # The fixture stores weights rounded to bfloat16; the computed float32 kernel rounds to it.
  np.testing.assert_array_equal(kernel.astype(ml_dtypes.bfloat16).astype(np.float32),
                                buffer[0, 0])
  np.testing.assert_allclose(kernel.sum(), 1.0, rtol=1e-6)
  assert antialias.kernel_from_buffer(buffer) == tuple(map(tuple, buffer[0, 0].tolist()))


def test_antialias_kernel_sizes():
  assert antialias.gaussian_kernel(0.5).shape == (5, 5)
  assert antialias.gaussian_kernel(0.125).shape == (29, 29)


def test_detector_view_keeps_the_size_and_shows_only_the_kept_pixels():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(size=(2, 16, 16, 3)), jnp.float32)
  view = antialias.detector_view(x, 0.25)
  assert view.shape == x.shape and view.dtype == x.dtype
  small = antialias.antialias_downsample(x, 0.25)
  np.testing.assert_array_equal(np.asarray(view[:, ::4, ::4]), np.asarray(small))
  # Each kept pixel fills its 4x4 block: the view holds no detail finer than the detector's.
  np.testing.assert_array_equal(np.asarray(view[:, 3::4, 2::4]), np.asarray(small))
  flat = jnp.full((1, 8, 8, 3), 0.3, jnp.float32)
  # Away from the zero padding of the border (as the official module pads) a flat frame stays.
  np.testing.assert_allclose(np.asarray(antialias.detector_view(flat, 0.5))[:, 2:6, 2:6], 0.3,
                             atol=1e-6)
  assert antialias.detector_view(x, 1.0) is x
  with pytest.raises(ValueError, match='multiples'):
    antialias.detector_view(x[:, :15], 0.25)


def test_antialias_scale_one_is_identity():
  x = jnp.asarray(np.random.default_rng(5).random((1, 8, 8, 3)), jnp.float32)
  assert antialias.antialias_downsample(x, 1.0) is x


@pytest.mark.parametrize('scale', [0.5, 0.25])
def test_antialias_downsample_matches_padded_depthwise_conv(scale):
  x = np.random.default_rng(6).random((2, 16, 12, 3)).astype(np.float32)
  kernel = antialias.gaussian_kernel(scale).astype(np.float64)
  k = kernel.shape[0]
  pad = k // 2
  padded = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  full = np.zeros((2, 16, 12, 3))
  for i in range(16):
    for j in range(12):
      full[:, i, j] = np.einsum('bhwc,hw->bc', padded[:, i:i + k, j:j + k], kernel)
  step = int(1 / scale)
  want = full[:, ::step, ::step]
  got = np.asarray(antialias.antialias_downsample(jnp.asarray(x), scale))
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-6)


def _strided_depthwise_conv(x, kernel, stride):
  """The official form: a depthwise convolution with the (k, k) kernel, padded k // 2 (and one
  less on the right for even k), strided."""
  size = kernel.shape[0]
  ka = size // 2
  kb = ka - 1 if size % 2 == 0 else ka
  channels = x.shape[-1]
  weight = jnp.asarray(np.tile(kernel[:, :, None, None], (1, 1, 1, channels)))
  return jax.lax.conv_general_dilated(
      x, weight, (stride, stride), ((ka, kb), (ka, kb)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=channels,
      precision=jax.lax.Precision.HIGHEST)


@pytest.mark.parametrize('scale', [0.5, 0.25, 0.125])
def test_antialias_downsample_and_its_gradient_match_the_strided_convolution(scale):
  # Odd, unequal sizes: the banded matrices must pad and keep the same pixels as the convolution.
  x = jnp.asarray(np.random.default_rng(7).random((2, 37, 50, 3)), jnp.float32)
  kernel = antialias.gaussian_kernel(scale)
  stride = int(1 / scale)
  want = _strided_depthwise_conv(x, kernel, stride)
  got = antialias.antialias_downsample(x, scale)
  assert got.shape == want.shape == (2, -(-37 // stride), -(-50 // stride), 3)
  np.testing.assert_allclose(got, want, atol=1e-6)
  cotangent = jnp.asarray(np.random.default_rng(8).normal(size=want.shape), jnp.float32)
  grad_got = jax.grad(lambda v: jnp.sum(antialias.antialias_downsample(v, scale) * cotangent))(x)
  grad_want = jax.grad(lambda v: jnp.sum(_strided_depthwise_conv(v, kernel, stride) * cotangent))(x)
  np.testing.assert_allclose(grad_got, grad_want, atol=1e-6)


def test_antialias_downsample_with_a_kernel_that_is_not_separable():
  kernel = antialias.gaussian_kernel(0.25).copy()
  kernel[0, 0] += 0.01
  assert antialias.separable_factors(kernel) is None
  assert antialias.separable_factors(antialias.gaussian_kernel(0.25)) is not None
  x = jnp.asarray(np.random.default_rng(9).random((1, 20, 24, 3)), jnp.float32)
  np.testing.assert_allclose(antialias.antialias_downsample(x, 0.25, kernel),
                             _strided_depthwise_conv(x, kernel, 4), atol=1e-6)


def test_make_coordinate_grid():
  g = np.asarray(grid.make_coordinate_grid((3, 5)))
  assert g.shape == (3, 5, 2) and g.dtype == np.float32
  np.testing.assert_allclose(g[1, :, 0], [-1, -0.5, 0, 0.5, 1])
  np.testing.assert_allclose(g[:, 2, 1], [-1, 0, 1])
  np.testing.assert_allclose(g[0, 0], [-1, -1])
  np.testing.assert_allclose(g[2, 4], [1, 1])


def test_kp2gaussian():
  kp = jnp.asarray([[[0.0, 0.0], [1.0, -1.0]]], jnp.float32)
  heat = np.asarray(grid.kp2gaussian(kp, (3, 5), 0.01))
  assert heat.shape == (1, 2, 3, 5)
  assert heat[0, 0, 1, 2] == 1.0 and heat[0, 1, 0, 4] == 1.0
  np.testing.assert_allclose(heat[0, 0, 1, 3], np.exp(-0.5 * 0.25 / 0.01), rtol=1e-6)


@pytest.mark.parametrize('padding_mode', ['zeros', 'reflection'])
def test_grid_sample_matches_torch_values_and_gradients(padding_mode):
  torch = pytest.importorskip('torch')
  rng = np.random.default_rng(7)
  x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
  g = rng.uniform(-2.2, 2.2, (2, 5, 6, 2)).astype(np.float32)
  w = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
  xt = torch.tensor(x, requires_grad=True)
  gt = torch.tensor(g, requires_grad=True)
  out = torch.nn.functional.grid_sample(xt, gt, padding_mode=padding_mode, align_corners=False)
  (out * torch.tensor(w)).sum().backward()

  x_nhwc, w_nhwc = jnp.asarray(x.transpose(0, 2, 3, 1)), jnp.asarray(w.transpose(0, 2, 3, 1))
  loss = lambda a, b: jnp.sum(grid_sample.grid_sample(a, b, padding_mode) * w_nhwc)
  got = grid_sample.grid_sample(x_nhwc, jnp.asarray(g), padding_mode)
  grad_x, grad_g = jax.grad(loss, (0, 1))(x_nhwc, jnp.asarray(g))
  np.testing.assert_allclose(np.asarray(got), out.detach().numpy().transpose(0, 2, 3, 1),
                             atol=1e-5)
  np.testing.assert_allclose(np.asarray(grad_x), xt.grad.numpy().transpose(0, 2, 3, 1),
                             atol=1e-5)
  np.testing.assert_allclose(np.asarray(grad_g), gt.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('factor', [1, 2, 3, 4])
def test_nearest_upsampled_conv3x3_equals_conv_of_the_upsampled_map(factor):
  from jax import lax
  from g3fa_jax.ops.upsampled_conv import nearest_upsampled_conv3x3
  from g3fa_jax.ops.resize import resize_nearest
  rng = np.random.default_rng(factor)
  x = jnp.asarray(rng.normal(size=(2, 5, 4, 3)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 6)), jnp.float32)

  def direct(x, kernel):
    big = resize_nearest(x, (5 * factor, 4 * factor))
    return lax.conv_general_dilated(big, kernel, (1, 1), [(1, 1), (1, 1)],
                                    dimension_numbers=('NHWC', 'HWIO', 'NHWC'))

  np.testing.assert_allclose(nearest_upsampled_conv3x3(x, kernel, factor), direct(x, kernel),
                             rtol=1e-5, atol=1e-5)
  loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))
  ours = jax.grad(loss(lambda x, k: nearest_upsampled_conv3x3(x, k, factor)), (0, 1))(x, kernel)
  theirs = jax.grad(loss(direct), (0, 1))(x, kernel)
  for a, b in zip(ours, theirs):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_nearest_upsampled_conv3x3_rejects_a_wrong_kernel():
  from g3fa_jax.ops.upsampled_conv import integer_factor, nearest_upsampled_conv3x3
  with pytest.raises(ValueError, match='kernel'):
    nearest_upsampled_conv3x3(jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 2, 1)), 2)
  assert integer_factor((64, 64), (256, 256)) == 4
  assert integer_factor((64, 64), (96, 96)) is None
  assert integer_factor((64, 32), (128, 128)) is None


@pytest.mark.parametrize('kernel_size,padding', [((3, 3, 3), (1, 1, 1)), ((3, 1, 2), (0, 0, 1))])
def test_conv3d_as_2d_equals_the_3d_convolution(kernel_size, padding):
  from jax import lax
  from g3fa_jax.models.blocks import conv3d_as_2d
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 5, 6, 7, 3)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=kernel_size + (3, 4)), jnp.float32)

  def direct(x, kernel):
    return lax.conv_general_dilated(x, kernel, (1, 1, 1), [(p, p) for p in padding],
                                    dimension_numbers=('NDHWC', 'DHWIO', 'NDHWC'))

  np.testing.assert_allclose(conv3d_as_2d(x, kernel, padding), direct(x, kernel), rtol=1e-5,
                             atol=1e-5)
  loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))
  ours = jax.grad(loss(lambda x, k: conv3d_as_2d(x, k, padding)), (0, 1))(x, kernel)
  theirs = jax.grad(loss(direct), (0, 1))(x, kernel)
  for a, b in zip(ours, theirs):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_the_fast_forms_keep_examples_apart():
  """Each example of a batch gets what it gets alone (the reshapes that fold depth or spatial
  axes into rows never mix examples)."""
  from g3fa_jax.models.blocks import Dense, conv3d_as_2d
  from g3fa_jax.ops.upsampled_conv import nearest_upsampled_conv3x3
  rng = np.random.default_rng(1)
  x2d = jnp.asarray(rng.normal(size=(3, 5, 4, 3)), jnp.float32)
  x3d = jnp.asarray(rng.normal(size=(3, 4, 5, 6, 3)), jnp.float32)
  dense = Dense(4)
  dense_vars = dense.init(jax.random.PRNGKey(0), x3d)
  kernel2d = jnp.asarray(rng.normal(size=(3, 3, 3, 6)), jnp.float32)
  kernel3d = jnp.asarray(rng.normal(size=(3, 3, 3, 3, 4)), jnp.float32)
  ops = {
      'upsampled_conv': (lambda x: nearest_upsampled_conv3x3(x, kernel2d, 2), x2d),
      'conv3d_as_2d': (lambda x: conv3d_as_2d(x, kernel3d, (1, 1, 1)), x3d),
      'dense': (lambda x: dense.apply(dense_vars, x), x3d),
  }
  for name, (fn, x) in ops.items():
    together = fn(x)
    alone = jnp.concatenate([fn(x[i:i + 1]) for i in range(x.shape[0])])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5, err_msg=name)
