//! No stage panics, whatever volume it gets: tiny, flat, hugely anisotropic, negative,
//! constant, or holding NaN/Inf (the reader sets those to 0, but the stages must cope anyway).
//! A stage may refuse (an error) or pass the image through; it must not panic.

use neuro_batch::stages::{Grid, bias_correction, normalization, skull_strip};

fn all_stages(image: &[f32], grid: &Grid) {
    let strip = skull_strip::strip(image, grid, &skull_strip::Params::default());
    let mask = match strip {
        Ok(out) => out.mask,
        Err(_) => skull_strip::head_mask(image, grid, &skull_strip::Params::default())
            .unwrap_or_else(|_| vec![1; image.len()]),
    };
    assert_eq!(mask.len(), image.len());
    let mut image = image.to_vec();
    let bias =
        bias_correction::correct(&mut image, &mask, grid, &bias_correction::Params::default());
    assert_eq!(bias.field.len(), image.len());
    normalization::normalize(&mut image, &mask, &normalization::Params::default());
}

#[test]
fn stages_never_panic_on_odd_volumes() {
    type Case = (
        &'static str,
        [usize; 3],
        [f32; 3],
        Box<dyn Fn(usize) -> f32>,
    );
    let cases: Vec<Case> = vec![
        ("1x1x1", [1, 1, 1], [1.0; 3], Box::new(|_| 5.0)),
        ("two voxels", [2, 1, 1], [1.0; 3], Box::new(|i| i as f32)),
        ("a line", [1, 1, 50], [1.0; 3], Box::new(|i| (i % 7) as f32)),
        (
            "huge anisotropy",
            [200, 3, 3],
            [0.1, 8.0, 8.0],
            Box::new(|i| ((i * 37) % 101) as f32),
        ),
        (
            "negative values",
            [20, 20, 20],
            [1.0; 3],
            Box::new(|i| (i % 13) as f32 - 20.0),
        ),
        ("constant", [16, 16, 16], [1.0; 3], Box::new(|_| 3.0)),
        ("all zero", [8, 8, 8], [1.0; 3], Box::new(|_| 0.0)),
        (
            "NaN and Inf",
            [16, 16, 16],
            [1.0; 3],
            Box::new(|i| match i % 5 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                _ => i as f32,
            }),
        ),
        (
            "a bright dot",
            [32, 32, 32],
            [1.0; 3],
            Box::new(|i| if i == 16_000 { 1e6 } else { 1.0 }),
        ),
    ];
    for (name, dims, spacing, value) in cases {
        let grid = Grid::new(dims, spacing);
        let image: Vec<f32> = (0..grid.len()).map(value).collect();
        let result = std::panic::catch_unwind(|| all_stages(&image, &grid));
        assert!(result.is_ok(), "a stage panicked on {name}");
    }
}
