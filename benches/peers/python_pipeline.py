"""The Python pipeline neuro-batch is measured against (issue 18): what a neuro engineer would
write with the usual libraries, one process per worker.

Per T1w image: nibabel read; skull strip by scipy (Gaussian smoothing, Otsu threshold, erosion,
largest component, dilation, closing, hole filling); SimpleITK N4 bias correction (shrink 4,
4 levels x 50 iterations, the mask above); intensity scaling to the 2nd..98th percentile inside
the mask; nibabel write of the corrected image (float32, .nii.gz) and the mask.

Not part of neuro-batch and never imported by it: install its libraries in a venv outside the
repository (pip install nibabel scipy SimpleITK) and run

    python benches/peers/python_pipeline.py BIDS_DIR OUT_DIR [--workers 2]

It prints one line per image and the wall time of the whole batch.
"""

import argparse
import glob
import os
import time
from multiprocessing import Pool

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from scipy import ndimage


def otsu(values, bins=256):
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    return centres[np.argmax(w0 * w1 * (mu0 - mu1) ** 2)]


def skull_strip(vol, zooms):
    smoothed = ndimage.gaussian_filter(vol, sigma=[1.0 / z for z in zooms])
    mask = smoothed > otsu(smoothed[smoothed > 0])
    mask = ndimage.binary_erosion(mask, iterations=3)
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = labels == (np.argmax(sizes) + 1)
    mask = ndimage.binary_dilation(mask, iterations=3)
    mask = ndimage.binary_closing(mask, iterations=2)
    return ndimage.binary_fill_holes(mask)


def n4(vol, mask, zooms):
    image = sitk.GetImageFromArray(vol.transpose(2, 1, 0).astype(np.float32))
    image.SetSpacing([float(z) for z in zooms])
    m = sitk.GetImageFromArray(mask.transpose(2, 1, 0).astype(np.uint8))
    m.CopyInformation(image)
    shrunk, shrunk_mask = sitk.Shrink(image, [4] * 3), sitk.Shrink(m, [4] * 3)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([50] * 4)
    corrector.Execute(shrunk, shrunk_mask)
    log_field = corrector.GetLogBiasFieldAsImage(image)
    field = np.exp(sitk.GetArrayFromImage(log_field).transpose(2, 1, 0))
    return vol / field


def normalize(vol, mask):
    lo, hi = np.percentile(vol[mask], [2, 98])
    return np.clip((vol - lo) / (hi - lo), 0, None).astype(np.float32)


def process(job):
    path, out_dir = job
    started = time.perf_counter()
    img = nib.load(path)
    vol = np.asarray(img.dataobj, dtype=np.float32)
    zooms = img.header.get_zooms()[:3]
    mask = skull_strip(vol, zooms)
    corrected = normalize(n4(vol, mask, zooms), mask)
    stem = os.path.basename(path).split(".nii")[0].replace("_T1w", "")
    header = img.header.copy()
    header.set_data_dtype(np.float32)
    nib.save(
        nib.Nifti1Image(corrected, img.affine, header),
        os.path.join(out_dir, f"{stem}_desc-preproc_T1w.nii.gz"),
    )
    nib.save(
        nib.Nifti1Image(mask.astype(np.uint8), img.affine),
        os.path.join(out_dir, f"{stem}_desc-brain_mask.nii.gz"),
    )
    return path, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bids")
    parser.add_argument("out")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    images = sorted(glob.glob(os.path.join(args.bids, "sub-*/**/anat/*_T1w.nii*"), recursive=True))
    started = time.perf_counter()
    with Pool(args.workers) as pool:
        for path, seconds in pool.imap_unordered(process, [(p, args.out) for p in images]):
            print(f"{path}: {seconds:.2f} s")
    print(f"{len(images)} images, {args.workers} workers: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
