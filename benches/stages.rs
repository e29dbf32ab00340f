//! Each stage on a 181×217×181 (1 mm, MNI-sized) phantom. Throughput is voxels per second.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use neuro_batch::stages::grid::flat;
use neuro_batch::stages::{Grid, bias_correction, normalization, skull_strip};
use neuro_batch::synth::{BiasKind, PhantomParams, synthesize};
use std::time::Duration;

fn stages(c: &mut Criterion) {
    let shape = [181, 217, 181];
    let phantom = synthesize(&PhantomParams {
        shape,
        voxel_mm: [1.0; 3],
        bias: 0.4,
        bias_kind: BiasKind::Smooth { length_mm: 30.0 },
        noise: 0.03,
        gain: 1.0,
        contrast: 1.0,
        seed: 2,
    });
    let grid = Grid::new(shape, [1.0; 3]);
    let image: Vec<f32> = flat(&phantom.image).iter().map(|&v| f32::from(v)).collect();
    let mask = flat(&phantom.brain_mask).into_owned();

    let mut group = c.benchmark_group("stages_181x217x181");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(grid.len() as u64));
    group.bench_function("skull_strip", |b| {
        b.iter(|| skull_strip::strip(&image, &grid, &skull_strip::Params::default()).expect("mask"))
    });
    group.bench_function("bias_correction", |b| {
        b.iter_batched_ref(
            || image.clone(),
            |image| {
                bias_correction::correct(image, &mask, &grid, &bias_correction::Params::default())
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("normalization", |b| {
        b.iter_batched_ref(
            || image.clone(),
            |image| normalization::normalize(image, &mask, &normalization::Params::default()),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
