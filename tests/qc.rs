//! `neuro-batch qc` on a finished run: one PNG per mask, with a red outline, and the
//! output directory still validates.

mod common;

use common::*;

#[test]
fn draws_one_picture_per_mask_with_an_outline() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (code, _, stderr) = run(&sample_data(), &out, &[]);
    assert_eq!(code, 0, "{stderr}");
    let output = neuro_batch().arg("qc").arg(&out).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for sub in ["01", "02", "itk"] {
        let png = out.join(format!("qc/sub-{sub}_desc-brain_qc.png"));
        let picture = image::open(&png)
            .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
            .to_rgb8();
        assert!(
            picture.height() >= 200 && picture.width() >= 3 * 200,
            "three panels big enough to judge: {}x{}",
            picture.width(),
            picture.height()
        );
        let red = picture
            .pixels()
            .filter(|p| p[0] == 255 && p[1] == 40)
            .count();
        let grey = picture
            .pixels()
            .filter(|p| p[0] == p[1] && p[1] == p[2] && p[0] > 60)
            .count();
        assert!(
            red > 300 && grey > 10_000,
            "sub-{sub}: outline {red} px over an image of {grey} px"
        );
    }
    // Only the selected subject, and a directory that is not an output is refused.
    let output = neuro_batch()
        .arg("qc")
        .arg(&out)
        .args(["--participant-label", "itk"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let output = neuro_batch().arg("qc").arg(sample_data()).output().unwrap();
    assert_eq!(output.status.code(), Some(66));
    if let Some(validator) = bids_validator() {
        let errors = validator_errors(&validator, &out);
        assert!(
            errors.is_empty(),
            "qc/ is ignored by the validator: {errors:#?}"
        );
    }
}
