"""`n3 match A B -o matches.json`."""
from __future__ import annotations

import click

from .common import reports_errors


@click.command()
@click.argument("image_a", type=click.Path(dir_okay=False))
@click.argument("image_b", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="JSON file to write.")
@click.option("--viz", type=click.Path(dir_okay=False), default=None,
              help="Also draw the matches side by side (inliers green, outliers red) into this image.")
@click.option("--intrinsics", "intrinsics_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Camera matrices: 9 numbers (both images) or 18 (A then B), or JSON {K | K_a, K_b}.")
@click.option("--focal", type=click.FloatRange(min=1, max=1e6), default=None, callback=lambda c, p, v: _finite(v),
              help="Focal length in pixels for both images [default: EXIF, else 1.2 x the longer side].")
@click.option("--max-matches", type=click.IntRange(min=8), default=2000, show_default=True,
              help="Keep at most this many SIFT matches.")
@click.option("-m", "--model", default=None, metavar="NAME|FILE",
              help="Match network (see `n3 models`) [default: the shipped N³Net]; `none`: robust estimation only.")
@click.option("--knn/--no-knn", default=None,
              help="Interpolate the network's scores with a kNN vote over the model's datastore of training "
                   "matches [default: on when the model carries one that helped on validation].")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@reports_errors
def match(image_a, image_b, output, viz, intrinsics_file, focal, max_matches, model, knn, overwrite):
    """Find which SIFT matches between two photos of a scene are correct, and the relative pose.

    Matches are normalised with the intrinsics, scored by the network (N³Net: CNNet with an N³
    block), and the essential matrix is estimated robustly from the matches it keeps. The JSON
    holds keypoints, matches, scores, the inlier mask, E, F, R and t (x_B = R x_A + t, |t| = 1).

    \b
    Example:
      n3 match left.jpg right.jpg -o pose.json --viz matches.png
    """
    from .. import api

    res = api.match_files(image_a, image_b, output, viz, intrinsics_file, focal, max_matches, model, knn, overwrite)
    if res["warning"]:
        click.echo(res["warning"], err=True)
    click.echo(f"{res['num_inliers']} of {res['num_matches']} matches kept; "
               f"intrinsics: {res['intrinsics']['source']}; wrote {output}", err=True)


def _finite(v):
    if v is not None and v != v:  # NaN passes click's range check
        raise click.BadParameter("must be a number, not nan")
    return v
