"""The library API that the CLI and Python users share.

>>> from n3cli import api
>>> model = api.load_denoiser(color="rgb")            # torch, shipped colour model
>>> clean = api.denoise(model, noisy_pixels)          # H x W x C float32 in [0, 1] (or uint8/uint16, H x W)
>>> fast = api.load_denoiser(color="rgb", backend="onnx")  # onnxruntime, no torch needed

Nothing here imports torch until a torch model is loaded.
"""
# what the command line needs besides, for scripts that do the same
from ..io.atomic import remove_stale_parts
from ..io.camera_jpeg import parse_crop
from ..io.folders import Job, expand_inputs, plan_jobs, same_file
from ..io.images import MAX_PIXELS, WRITE_EXTS, check_depth, is_image_path
from ..io.raw import is_raw_path
from ..io.sniff import guess_ext
from ..pipelines.burst import denoise_burst, merge_burst, merge_raw_burst
from ..pipelines.burst_sr import upscale_burst
from ..pipelines.denoise import denoise, run_model, stretch_gain
from ..pipelines.raw import RAW_OUTPUT_EXTS, parse_noise
from ..pipelines.sr import sr_factor, upscale
from ..runtime.malloc import keep_freed_memory
from ..store.noise_profiles import NoiseProfiles
from ..store.noise_profiles import default_path as default_noise_profiles_path
from .bursts import burst_file, upscale_burst_file
from .cluster import RayDenoiser
from .cluster import run_jobs as run_on_ray
from .evaluate import (
    count_images,
    evaluate_denoise,
    evaluate_flat_noise,
    evaluate_matching,
    evaluate_raw_denoise,
    evaluate_real_noise,
    evaluate_upscale,
    read_mosaics,
    read_pairs,
    read_photos,
    read_raw_pairs,
)
from .files import (
    denoise_file,
    find_noise_profiles,
    job_record,
    noise_level,
    noise_profile_reading,
    run_job,
    upscale_file,
)
from .loading import (
    ModelCache,
    load_denoiser,
    load_matcher,
    load_raw_denoiser,
    load_upscaler,
    resolve_model,
    select_device,
)
from .match import match_files
from .models import export_model, import_checkpoint, shipped_models
from .queue import describe_score, promote_run, queue_status, run_queue
from .train import build_match_datastore, load_training_config, run_training

__all__ = [
    "Job", "MAX_PIXELS", "ModelCache", "RAW_OUTPUT_EXTS", "RayDenoiser", "WRITE_EXTS", "build_match_datastore", "burst_file", "check_depth",
    "count_images", "denoise", "denoise_burst", "denoise_file", "evaluate_denoise", "evaluate_flat_noise", "evaluate_matching", "evaluate_raw_denoise", "evaluate_real_noise",
    "evaluate_upscale",
    "default_noise_profiles_path", "describe_score", "expand_inputs", "export_model", "find_noise_profiles", "guess_ext", "import_checkpoint", "is_image_path", "is_raw_path", "job_record", "keep_freed_memory",
    "load_denoiser", "load_matcher", "load_raw_denoiser", "load_training_config", "load_upscaler", "match_files", "merge_burst", "merge_raw_burst",
    "NoiseProfiles", "noise_level", "noise_profile_reading", "parse_crop", "parse_noise", "plan_jobs", "promote_run", "queue_status", "read_mosaics", "read_pairs", "read_photos", "read_raw_pairs", "remove_stale_parts", "resolve_model",
    "run_job", "run_model", "run_on_ray", "run_queue", "run_training", "same_file", "select_device", "shipped_models", "sr_factor", "stretch_gain", "upscale",
    "upscale_burst", "upscale_burst_file", "upscale_file",
]
