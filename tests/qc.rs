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
        let (width, height, pixels) = read_png(&png);
        assert!(
            height >= 200 && width >= 3 * 200,
            "three panels big enough to judge: {width}x{height}"
        );
        let red = pixels
            .chunks(3)
            .filter(|p| p[0] == 255 && p[1] == 40)
            .count();
        let grey = pixels
            .chunks(3)
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

/// Width, height and RGB bytes of a PNG written by `qc` (8-bit RGB).
fn read_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}
