"""Builds examples/photo.jpg: a synthetic product-style photo (a glossy red ball resting on a
wooden block, soft shadow, studio backdrop with sensor noise), 768x768 RGB JPEG without alpha,
so the pipeline's background-removal path runs. Deterministic (fixed seed)."""
import numpy as np
from PIL import Image, ImageFilter

W = H = 768
rng = np.random.default_rng(7)
y, x = np.mgrid[0:H, 0:W].astype(np.float32)

# Backdrop: a vertical grey gradient.
img = np.empty((H, W, 3), np.float32)
g = 0.86 - 0.18 * (y / H)
img[...] = g[..., None] * np.array([1.0, 0.98, 0.95])

# Soft contact shadow under the block.
shadow = np.exp(-(((x - 384) / 230) ** 2 + ((y - 610) / 38) ** 2))
img *= (1 - 0.45 * shadow)[..., None]

# Wooden block (front face and top face) with grain.
front = (x > 214) & (x < 554) & (y > 470) & (y < 610)
top = (y > 420) & (y <= 470) & (x > 214 + (470 - y)) & (x < 554)
grain = 0.06 * np.sin(x / 7.0 + 3 * np.sin(y / 23.0))
wood = np.array([0.62, 0.42, 0.24])
img[front] = (wood * (0.85 + grain[front, None]))
img[top] = (wood * (1.05 + grain[top, None])).clip(0, 1)

# Glossy ball on the block: Lambert + Blinn-Phong highlight.
cx, cy, r = 384.0, 300.0, 130.0
dx, dy = (x - cx) / r, (y - cy) / r
d2 = dx * dx + dy * dy
ball = d2 < 1
nz = np.sqrt(np.clip(1 - d2, 0, 1))
light = np.array([-0.45, -0.6, 0.66]); light /= np.linalg.norm(light)
lam = np.clip(dx * light[0] + dy * light[1] + nz * light[2], 0, 1)
half = light + np.array([0, 0, 1.0]); half /= np.linalg.norm(half)
spec = np.clip(dx * half[0] + dy * half[1] + nz * half[2], 0, 1) ** 60
col = np.array([0.78, 0.08, 0.06])
shade = col[None, :] * (0.18 + 0.82 * lam[ball, None]) + 0.9 * spec[ball, None]
img[ball] = shade.clip(0, 1)

img += rng.normal(0, 0.012, img.shape).astype(np.float32)
out = Image.fromarray((img.clip(0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
out = out.filter(ImageFilter.GaussianBlur(0.6))
out.save(__file__.replace("make_photo.py", "photo.jpg"), quality=90)
