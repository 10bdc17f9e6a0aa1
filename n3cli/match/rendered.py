"""Two-view test pairs rendered from photos: the inside of a box room whose five walls are
textured with photos, seen by two cameras of known intrinsics and relative pose.

The geometry is synthetic but the images are not: SIFT finds real keypoints on real image texture,
and its matches carry the detector's noise and real mismatches (repeated texture, viewpoint
change), which the synthetic pairs of :mod:`n3cli.match.synthetic` only imitate. Each pair is
written as two PNGs plus a line of a pairs file in the SuperGlue format that `n3 eval --task match
--data` reads. Pair ``i`` of seed ``s`` is a pure function of ``default_rng([s, i])`` and the textures.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZE = (640, 480)  # rendered image (width, height)


@dataclass
class Wall:
    origin: np.ndarray  # a corner (3,)
    u: np.ndarray  # unit edge directions (3,): the texture's x and y
    v: np.ndarray
    extent: tuple[float, float]  # lengths along u and v
    texture: np.ndarray  # (h, w, 3) float32 in [0, 1]


def _rotation(z: np.ndarray, roll: float) -> np.ndarray:
    """World-to-camera rotation of a camera looking along ``z``, image y pointing down (world +y), rolled."""
    z = z / np.linalg.norm(z)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    return np.stack([c * x + s * y, -s * x + c * y, z])


def room(rng: np.random.Generator, textures: list[np.ndarray]) -> list[Wall]:
    """Back wall, floor, ceiling and side walls of a random box in front of the origin (y down)."""
    w, h, d = rng.uniform(4.0, 6.0), rng.uniform(3.0, 4.5), rng.uniform(4.0, 8.0)
    x0, y0, z0 = -w / 2, -h / 2, -1.0  # the room reaches behind the cameras: no open edges in view
    e = np.eye(3)
    picks = rng.choice(len(textures), size=5, replace=len(textures) < 5)
    specs = [((x0, y0, d), e[0], e[1], (w, h)),  # back
             ((x0, -y0, z0), e[0], e[2], (w, d - z0)),  # floor
             ((x0, y0, z0), e[0], e[2], (w, d - z0)),  # ceiling
             ((x0, y0, z0), e[2], e[1], (d - z0, h)),  # left
             ((-x0, y0, z0), e[2], e[1], (d - z0, h))]  # right
    return [Wall(np.array(o, float), u, v, ext, textures[i]) for (o, u, v, ext), i in zip(specs, picks)]


def _bilinear(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``tex`` (h, w, 3) sampled at float pixel positions (x, y) inside it."""
    h, w = tex.shape[:2]
    x0 = np.clip(np.floor(x).astype(np.int64), 0, w - 2)
    y0 = np.clip(np.floor(y).astype(np.int64), 0, h - 2)
    fx = np.clip(x - x0, 0, 1)[:, None].astype(np.float32)
    fy = np.clip(y - y0, 0, 1)[:, None].astype(np.float32)
    top = tex[y0, x0] * (1 - fx) + tex[y0, x0 + 1] * fx
    bottom = tex[y0 + 1, x0] * (1 - fx) + tex[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def render(walls: list[Wall], K: np.ndarray, R: np.ndarray, c: np.ndarray, size: tuple[int, int] = SIZE,
           supersample: int = 2) -> np.ndarray:
    """The view (H, W, 3 float32) of camera ``K [R | -R c]``: each pixel's ray hits the nearest wall,
    whose texture is sampled bilinearly; ``supersample``² rays a pixel against aliasing."""
    W, H = size
    s = supersample
    off = (np.arange(s) + 0.5) / s - 0.5
    xs = (np.arange(W)[:, None] + off).ravel()
    ys = (np.arange(H)[:, None] + off).ravel()
    px = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    rays = np.concatenate([px, np.ones((len(px), 1))], 1) @ np.linalg.inv(K).T @ R  # world directions
    best = np.full(len(px), np.inf)
    out = np.zeros((len(px), 3), np.float32)
    for wall in walls:
        n = np.cross(wall.u, wall.v)
        den = rays @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = ((wall.origin - c) @ n) / den
        hit = c + lam[:, None] * rays - wall.origin
        a, b = hit @ wall.u, hit @ wall.v
        ok = (lam > 0) & (lam < best) & (a >= 0) & (a <= wall.extent[0]) & (b >= 0) & (b <= wall.extent[1])
        if not ok.any():
            continue
        th, tw = wall.texture.shape[:2]
        out[ok] = _bilinear(wall.texture, a[ok] / wall.extent[0] * (tw - 1), b[ok] / wall.extent[1] * (th - 1))
        best[ok] = lam[ok]
    return out.reshape(H, s, W, s, 3).mean((1, 3))


@dataclass
class RenderedPair:
    a: np.ndarray  # (H, W, 3) float32 view of camera A (at the origin)
    b: np.ndarray
    Ka: np.ndarray
    Kb: np.ndarray
    R: np.ndarray  # x_B = R x_A + t
    t: np.ndarray


def make_rendered_pair(rng: np.random.Generator, textures: list[np.ndarray], size: tuple[int, int] = SIZE,
                       noise: float = 2.0 / 255) -> RenderedPair:
    """One random pair: a room, camera A at the origin looking at the back wall, camera B
    0.3-1.2 units away looking at a point near A's, small rolls, focal lengths 0.7-1.1 x width,
    Gaussian noise of ``noise`` on both views."""
    walls = room(rng, textures)
    W, H = size
    back = walls[0].origin[2]
    target = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.4, 0.4), back])
    Ra = _rotation(target, rng.uniform(-0.05, 0.05))
    cb = rng.normal(size=3)
    cb *= rng.uniform(0.3, 1.2) / np.linalg.norm(cb)
    Rb = _rotation(target + rng.normal(0, 0.4, 3) * [1, 1, 0] - cb, rng.uniform(-0.1, 0.1))
    Ks = []
    for _ in range(2):
        f = rng.uniform(0.7, 1.1) * W
        Ks.append(np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1.0]]))
    views = []
    for K, Rc, c in ((Ks[0], Ra, np.zeros(3)), (Ks[1], Rb, cb)):
        img = render(walls, K, Rc, c, size) + rng.normal(0, noise, (H, W, 3))
        views.append(np.clip(img, 0, 1).astype(np.float32))
    R = Rb @ Ra.T  # camera A's frame to B's
    t = -Rb @ cb  # A's centre is the world origin
    return RenderedPair(views[0], views[1], Ks[0], Ks[1], R, t)


def load_textures(folder: str | Path, limit: int | None = None) -> list[np.ndarray]:
    """The images of ``folder`` (sorted; the first ``limit``) as (h, w, 3) float32 textures."""
    from ..io.folders import list_images
    from ..io.images import read_image

    out = []
    for path in list_images(folder)[:limit]:
        px = read_image(path).pixels.astype(np.float32)
        out.append(np.repeat(px, 3, 2) if px.shape[2] == 1 else px[:, :, :3])
    return out


def write_pairs(out_dir: str | Path, textures: list[np.ndarray], n: int, seed: int = 0,
                size: tuple[int, int] = SIZE, progress: bool = False) -> Path:
    """Render ``n`` pairs into ``out_dir`` (PNGs and ``pairs.txt``); returns the pairs file."""
    import imageio.v3 as iio
    from tqdm import tqdm

    from ..io.atomic import atomic_write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in tqdm(range(n), desc="rendering", unit="pair", disable=not progress):
        p = make_rendered_pair(np.random.default_rng([seed, i]), textures, size)
        names = (f"pair{i:04d}_a.png", f"pair{i:04d}_b.png")
        for name, img in zip(names, (p.a, p.b)):
            iio.imwrite(out / name, np.clip(np.rint(img * 255), 0, 255).astype(np.uint8))
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = p.R, p.t
        nums = " ".join(f"{v:.10g}" for v in np.concatenate([p.Ka.ravel(), p.Kb.ravel(), T.ravel()]))
        lines.append(f"{names[0]} {names[1]} 0 0 {nums}")
    path = out / "pairs.txt"  # written last and whole: an interrupted run leaves no pairs file
    atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    return path
