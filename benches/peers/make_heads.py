"""The 8 real heads of the throughput comparison (issue 18), as a BIDS dataset: 7 copies of the
MNI152 2009a T1 that nilearn ships (197x233x189 at 1 mm), each scaled to int16 and multiplied
by its own smooth bias field (the exponential of a random quadratic over the grid), and the
ITK head of data/.

Not part of neuro-batch: run it from the venv of python_pipeline.py. The template is in the
nilearn wheel, which needs nothing else:

    pip download --no-deps nilearn -d /tmp/nl
    unzip -o /tmp/nl/nilearn-*.whl \\
        'nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz' -d /tmp/nl
    python benches/peers/make_heads.py \\
        /tmp/nl/nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz /tmp/heads8
"""

import argparse
import json
import os
import shutil

import nibabel as nib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ITK_HEAD = os.path.join(HERE, "..", "..", "data", "sub-itk", "anat", "sub-itk_T1w.nii.gz")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", help="the MNI152 2009a T1 (.nii.gz)")
    parser.add_argument("out", help="the BIDS dataset to write")
    parser.add_argument("--copies", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    template = nib.load(args.template)
    volume = template.get_fdata().astype(np.float32)
    x, y, z = np.meshgrid(
        *[np.linspace(-1, 1, n, dtype=np.float32) for n in volume.shape], indexing="ij"
    )
    rng = np.random.default_rng(args.seed)
    header = template.header.copy()
    header.set_data_dtype(np.int16)
    for i in range(1, args.copies + 1):
        c = rng.normal(0, 0.15, 6).astype(np.float32)
        field = np.exp(
            c[0] * x + c[1] * y + c[2] * z + c[3] * x * y + c[4] * y * z + c[5] * (x * x - z * z)
        )
        head = np.clip(volume * field / volume.max() * 3000, 0, 32767).astype(np.int16)
        anat = os.path.join(args.out, f"sub-mni{i}", "anat")
        os.makedirs(anat, exist_ok=True)
        image = nib.Nifti1Image(head, template.affine, header)
        nib.save(image, os.path.join(anat, f"sub-mni{i}_T1w.nii.gz"))
    anat = os.path.join(args.out, "sub-itk", "anat")
    os.makedirs(anat, exist_ok=True)
    shutil.copy(ITK_HEAD, anat)
    with open(os.path.join(args.out, "dataset_description.json"), "w") as f:
        json.dump({"Name": "neuro-batch heads", "BIDSVersion": "1.10.0"}, f)


if __name__ == "__main__":
    main()
