"""`n3 noise-profile add|show`: a camera's raw noise by ISO, measured on your own files."""
from __future__ import annotations

import json
import sys

import click

from ..errors import N3Error
from .common import fail

_PROFILES_HELP = ("The profile file [default: ~/.config/n3/noise-profiles.json; env N3_NOISE_PROFILES]; "
                  "`n3 denoise` reads the same one.")


@click.group("noise-profile")
def noise_profile():
    """Noise profiles: each camera's raw noise by ISO, pooled from your own files.

    One file's noise reading counts texture as noise: a frame full of foliage can read several
    times its true noise, and the RAW model then smooths its detail. A camera at one ISO has the
    same noise whatever it shoots, so `add` records the reading of each file under its camera
    and ISO, and `n3 denoise` uses the pooled value (the lower quartile of the readings) for raw
    files from that camera, at that ISO or between two measured ones, unless the file carries
    the maker's own DNG NoiseProfile.

    \b
    Examples:
      n3 noise-profile add shoot/*.CR2          # a few files per ISO; flat scenes read best
      n3 noise-profile show
      n3 denoise shoot/IMG_0420.CR2 -o clean.tiff --print-noise
    """


@noise_profile.command("add")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--profiles", default=None, metavar="FILE", envvar="N3_NOISE_PROFILES", help=_PROFILES_HELP)
@click.option("-r", "--recursive", is_flag=True, help="Descend into folders.")
def add(inputs, profiles, recursive):
    """Read the noise of raw files (files, folders, globs) and record it under each file's camera
    and ISO. A file added again replaces its earlier reading.

    Exit code: 0 if every file was recorded, 1 if any could not be (the others are still
    recorded), 2 for bad usage."""
    from pathlib import Path

    from ..api import (
        NoiseProfiles,
        default_noise_profiles_path,
        expand_inputs,
        is_raw_path,
        noise_profile_reading,
    )

    path = Path(profiles).expanduser() if profiles else default_noise_profiles_path()
    try:
        table = NoiseProfiles.load(path) if path.exists() else NoiseProfiles()
        unreadable = []
        files = [f for f, _ in expand_inputs(inputs, recursive, is_raw_path, unreadable)]
    except N3Error as e:
        fail(str(e))
    for d in unreadable:
        click.echo(f"error: {d}: cannot list this folder", err=True)
    if not files:
        fail(f"no raw files in {' '.join(inputs)}", 1)
    bad, cameras = [], {}
    for f in files:
        try:
            r = noise_profile_reading(f)
        except N3Error as e:
            bad.append(str(e))
            click.echo(f"error: {e}", err=True)
            continue
        table.add(r["camera"], r["iso"], r["a"], r["b"], str(Path(f).resolve()), r["source"])
        cameras.setdefault(r["camera"], set()).add(r["iso"])
        click.echo(f"{f}\t{r['camera']}\tISO {r['iso']}\ta={r['a']:.4g}\tb={r['b']:.4g}\t({r['source']})")
    if cameras:
        try:
            table.save(path)
        except OSError as e:
            fail(f"{path}: cannot write ({e.strerror or e})", 1)
        click.echo(f"wrote {path}")
        for cam, isos in sorted(cameras.items()):
            rows = [r for r in table.table(cam) if r.iso in isos]
            click.echo(f"  {cam}: " + ", ".join(f"ISO {r.iso} ({r.files} file{'s' if r.files > 1 else ''})" for r in rows))
    if bad:
        click.echo(f"{len(bad)} of {len(files)} files not recorded", err=True)
    sys.exit(1 if bad or unreadable else 0)


@noise_profile.command("show")
@click.option("--profiles", default=None, metavar="FILE", envvar="N3_NOISE_PROFILES", help=_PROFILES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the pooled table as JSON.")
def show(profiles, as_json):
    """Print each camera's pooled noise (a, b) per ISO: var = a*x + b on the [0, 1] mosaic."""
    from pathlib import Path

    from ..api import NoiseProfiles, default_noise_profiles_path

    path = Path(profiles).expanduser() if profiles else default_noise_profiles_path()
    if not path.exists():
        fail(f"{path}: no noise profiles yet (`n3 noise-profile add FILES` makes them)", 1)
    try:
        table = NoiseProfiles.load(path)
    except N3Error as e:
        fail(str(e))
    out = {cam: [{"iso": r.iso, "files": r.files, "a": r.a, "b": r.b} for r in table.table(cam)]
           for cam in sorted(table.cameras)}
    if as_json:
        click.echo(json.dumps(out, indent=1))
        return
    click.echo(f"# {path}")
    for cam, rows in out.items():
        click.echo(cam)
        click.echo(f"  {'ISO':>6}  {'files':>5}  {'a':>10}  {'b':>10}")
        for r in rows:
            click.echo(f"  {r['iso']:>6}  {r['files']:>5}  {r['a']:>10.4g}  {r['b']:>10.4g}")
