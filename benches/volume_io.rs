//! NIfTI read and write of a 256³ volume. Throughput is in bytes of voxel data
//! (int16 in, float32 out), so `.nii` and `.nii.gz` figures compare directly.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use neuro_batch::synth::{BiasKind, PhantomParams, synthesize};
use neuro_batch::volume::{new_header, read_volume, write_image};
use std::time::Duration;

const N: usize = 256;

fn nifti_io(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let phantom = synthesize(&PhantomParams {
        shape: [N; 3],
        voxel_mm: [1.0; 3],
        bias: 0.3,
        bias_kind: BiasKind::Poly,
        noise: 0.03,
        gain: 1.0,
        contrast: 1.0,
        seed: 1,
    });
    let header = new_header([N; 3], [1.0; 3]);
    let float = phantom.image.mapv(f32::from);
    let voxels = (N * N * N) as u64;

    let mut group = c.benchmark_group("nifti_256cubed");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for ext in ["nii", "nii.gz"] {
        let input = dir.path().join(format!("in.{ext}"));
        write_image(&input, &header, &phantom.image, 1).expect("write input");
        group.throughput(Throughput::Bytes(voxels * 2));
        group.bench_function(BenchmarkId::new("read_int16", ext), |b| {
            b.iter(|| read_volume(&input).expect("read"))
        });
        let levels: &[u32] = if ext == "nii" { &[0] } else { &[1, 6] };
        for &level in levels {
            let output = dir.path().join(format!("out.{ext}"));
            group.throughput(Throughput::Bytes(voxels * 4));
            group.bench_function(
                BenchmarkId::new(format!("write_float32_level{level}"), ext),
                |b| b.iter(|| write_image(&output, &header, &float, level).expect("write")),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, nifti_io);
criterion_main!(benches);
