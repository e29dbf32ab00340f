//! NIfTI reading against hand-built files: every supported dtype in both byte orders,
//! scaling, multi-member gzip, single-volume 4-D, and round trips that keep the affine.

mod common;

use common::*;
use ndarray::{Array3, ShapeBuilder};
use neuro_batch::volume::{VolumeError, new_header, read_volume, write_image};

fn encode<T: Copy>(values: &[T], big_endian: bool, to_le: fn(T) -> Vec<u8>) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| {
            let mut b = to_le(v);
            if big_endian {
                b.reverse();
            }
            b
        })
        .collect()
}

#[test]
fn reads_every_dtype_in_both_byte_orders_with_scaling() {
    let tmp = tempfile::tempdir().unwrap();
    let dims = [3i16, 4, 5];
    let n = 60usize;
    type Case = (i16, i16, fn(usize) -> f64, fn(f64, bool) -> Vec<u8>);
    let cases: Vec<Case> = vec![
        (2, 8, |i| (i * 3 % 251) as f64, |v, _| vec![v as u8]),
        (256, 8, |i| i as f64 - 30.0, |v, _| vec![(v as i8) as u8]),
        (
            4,
            16,
            |i| i as f64 * 100.0 - 3000.0,
            |v, be| encode(&[v as i16], be, |x| x.to_le_bytes().to_vec()),
        ),
        (
            512,
            16,
            |i| i as f64 * 1000.0,
            |v, be| encode(&[v as u16], be, |x| x.to_le_bytes().to_vec()),
        ),
        (
            8,
            32,
            |i| i as f64 * 1e5 - 2e6,
            |v, be| encode(&[v as i32], be, |x| x.to_le_bytes().to_vec()),
        ),
        (
            768,
            32,
            |i| i as f64 * 1e6,
            |v, be| encode(&[v as u32], be, |x| x.to_le_bytes().to_vec()),
        ),
        (
            16,
            32,
            |i| i as f64 * 0.25 - 3.0,
            |v, be| encode(&[v as f32], be, |x| x.to_le_bytes().to_vec()),
        ),
        (
            64,
            64,
            |i| i as f64 * 0.5 - 7.0,
            |v, be| encode(&[v], be, |x| x.to_le_bytes().to_vec()),
        ),
    ];
    for (datatype, bitpix, value, bytes_of) in cases {
        for big_endian in [false, true] {
            for (slope, inter) in [(1.0f32, 0.0f32), (2.0, -1.5), (f32::NAN, 0.0)] {
                let mut raw = RawNifti::new(&dims, datatype, bitpix);
                raw.big_endian = big_endian;
                raw.slope = slope;
                raw.inter = inter;
                raw.pixdim = [1.0, 2.0, 3.0];
                let data: Vec<u8> = (0..n)
                    .flat_map(|i| bytes_of(value(i), big_endian))
                    .collect();
                let path = tmp
                    .path()
                    .join(format!("t{datatype}_{big_endian}_{slope}.nii"));
                std::fs::write(&path, raw.bytes(&data)).unwrap();
                let (v, info) = read_volume(&path)
                    .unwrap_or_else(|e| panic!("dtype {datatype} be={big_endian}: {e}"));
                assert_eq!(v.data.shape(), [3, 4, 5]);
                assert_eq!(v.spacing_mm, [1.0, 2.0, 3.0]);
                assert_eq!(info.bytes_per_voxel * 8, bitpix as usize);
                let (s, b) = if slope.is_finite() {
                    (slope as f64, inter as f64)
                } else {
                    (1.0, 0.0)
                };
                // Voxel i is at x + 3*(y + 4*z): Fortran order.
                for z in 0..5 {
                    for y in 0..4 {
                        for x in 0..3 {
                            let i = x + 3 * (y + 4 * z);
                            let want = value(i) * s + b;
                            let got = v.data[[x, y, z]] as f64;
                            assert!(
                                (got - want).abs() <= want.abs() * 1e-6 + 1e-3,
                                "dtype {datatype} be={big_endian} slope={slope} at {i}: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn multi_member_gzip_and_single_volume_4d_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let values: Vec<f32> = (0..4 * 5 * 6).map(|i| i as f32).collect();
    let bytes = RawNifti::new(&[4, 5, 6, 1], 16, 32).bytes(
        &values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>(),
    );
    // Two gzip members, split inside the header, as bgzip-style tools write them.
    let mut multi = gzip(&bytes[..200]);
    multi.extend(gzip(&bytes[200..]));
    let path = tmp.path().join("multi.nii.gz");
    std::fs::write(&path, multi).unwrap();
    let (v, info) = read_volume(&path).unwrap();
    assert!(info.compressed);
    assert_eq!(v.data.shape(), [4, 5, 6]);
    assert_eq!(v.data[[3, 4, 5]], 119.0);
    assert_eq!(v.data[[1, 0, 0]], 1.0);
    assert_eq!(v.data[[0, 1, 0]], 4.0);
}

#[test]
fn rejects_what_it_cannot_read_without_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    type Case = (&'static str, Vec<u8>, fn(&VolumeError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "pair.nii",
            {
                let mut r = RawNifti::new(&[4, 4, 4], 16, 32);
                r.magic = *b"ni1\0";
                r.bytes(&[0; 256])
            },
            |e| matches!(e, VolumeError::Unsupported { .. }),
        ),
        (
            "analyze.nii",
            {
                let mut r = RawNifti::new(&[4, 4, 4], 16, 32);
                r.magic = [0; 4];
                r.bytes(&[0; 256])
            },
            |e| matches!(e, VolumeError::NotNifti { .. }),
        ),
        (
            "twod.nii",
            RawNifti::new(&[4, 4], 16, 32).bytes(&[0; 64]),
            |e| matches!(e, VolumeError::Unsupported { .. }),
        ),
        (
            "rgb.nii",
            RawNifti::new(&[4, 4, 4], 128, 24).bytes(&[0; 192]),
            |e| matches!(e, VolumeError::Unsupported { .. }),
        ),
        (
            "short.nii",
            RawNifti::new(&[4, 4, 4], 16, 32).bytes(&[0; 100]),
            |e| matches!(e, VolumeError::Truncated { .. }),
        ),
        // A tiny gzip file whose header claims 2^31 voxels of float64: rejected from sizes alone.
        (
            "bomb.nii.gz",
            gzip(&RawNifti::new(&[2048, 2048, 512], 64, 64).bytes(&[])),
            |e| matches!(e, VolumeError::InvalidHeader { .. }),
        ),
        (
            "gzclaim.nii.gz",
            gzip(&RawNifti::new(&[512, 512, 512], 16, 32).bytes(&[0; 4096])),
            |e| {
                matches!(
                    e,
                    VolumeError::InvalidHeader { .. } | VolumeError::Truncated { .. }
                )
            },
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_volume(&path).expect_err(name);
        assert!(expected(&err), "{name}: unexpected error {err}");
        assert!(
            err.to_string().contains(name),
            "{name}: error names the file: {err}"
        );
    }
}

#[test]
fn round_trip_keeps_values_and_geometry() {
    let tmp = tempfile::tempdir().unwrap();
    let data = Array3::from_shape_fn((7, 6, 5).f(), |(x, y, z)| {
        (x * 100 + y * 10 + z) as f32 + 0.5
    });
    let mut header = new_header([7, 6, 5], [0.9, 1.1, 2.5]);
    header.srow_x = [-0.9, 0.0, 0.0, 30.0];
    for name in ["rt.nii", "rt.nii.gz"] {
        let path = tmp.path().join(name);
        let written = write_image(&path, &header, &data, 6).unwrap();
        assert_eq!(written, std::fs::metadata(&path).unwrap().len());
        let (v, info) = read_volume(&path).unwrap();
        assert_eq!(info.compressed, name.ends_with(".gz"));
        assert_eq!(v.data, data);
        assert_eq!(v.header.srow_x, [-0.9, 0.0, 0.0, 30.0]);
        assert_eq!(v.spacing_mm, [0.9, 1.1, 2.5]);
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            if name.ends_with(".gz") { 2 } else { 1 },
            "no temporary files"
        );
    }
}
