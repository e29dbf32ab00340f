//! One head phantom, rendered voxel by voxel from an analytic description.

use super::field::{BiasKind, FieldShape};
use crate::stages::filter::gaussian;
use crate::stages::grid::{Grid, to_array};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

/// Parameters of one phantom.
#[derive(Debug, Clone)]
pub struct PhantomParams {
    /// Extents.
    pub shape: [usize; 3],
    /// Voxel size, mm.
    pub voxel_mm: [f32; 3],
    /// Peak-to-peak bias strength.
    pub bias: f32,
    /// The bias field's shape.
    pub bias_kind: BiasKind,
    /// Rician noise as a fraction of white matter.
    pub noise: f32,
    /// Overall scanner gain.
    pub gain: f32,
    /// Grey/white contrast relative to a typical T1w (1.0).
    pub contrast: f32,
    /// Noise and fold seed.
    pub seed: u64,
}

/// A rendered phantom with its ground truth, all Fortran-order `(nx, ny, nz)`.
#[derive(Debug)]
pub struct Phantom {
    /// The T1-weighted image, as stored (int16).
    pub image: Array3<i16>,
    /// 1 inside the brain (grey + white matter and ventricles).
    pub brain_mask: Array3<u8>,
    /// Tissue labels: 0 background, 1 CSF, 2 grey matter, 3 white matter, 4 scalp and skull.
    pub tissue: Array3<u8>,
    /// The multiplicative field applied to the image.
    pub bias_field: Array3<f32>,
}

// T1-weighted tissue intensities (white matter = 1).
const WM: f32 = 1.0;
const GM: f32 = 0.68;
const CSF: f32 = 0.22;
const SKULL: f32 = 0.06;
const SCALP: f32 = 0.85;
// Shell boundaries as fractions of the head's semi-axes.
const BRAIN_R: f32 = 0.78;
const WM_R: f32 = 0.70;
const CSF_R: f32 = 0.83;
const SKULL_R: f32 = 0.92;
/// Intensity of white matter before gain, as stored.
const WM_STORED: f32 = 1000.0;

/// Render the phantom described by `p`.
pub fn synthesize(p: &PhantomParams) -> Phantom {
    let grid = Grid::new(p.shape, p.voxel_mm);
    let [nx, ny, _] = p.shape;
    let anatomy = Anatomy::new(p);
    let mut intensity = vec![0f32; grid.len()];
    let mut brain = vec![0u8; grid.len()];
    let mut tissue = vec![0u8; grid.len()];
    let mut field = vec![1f32; grid.len()];
    intensity
        .par_chunks_mut(nx * ny)
        .zip(brain.par_chunks_mut(nx * ny))
        .zip(tissue.par_chunks_mut(nx * ny))
        .zip(field.par_chunks_mut(nx * ny))
        .enumerate()
        .for_each(|(z, (((t_slab, b_slab), l_slab), f_slab))| {
            for y in 0..ny {
                for x in 0..nx {
                    let i = x + nx * y;
                    let v = anatomy.voxel(p, [x, y, z]);
                    t_slab[i] = v.intensity;
                    b_slab[i] = u8::from(v.in_brain);
                    l_slab[i] = v.label;
                    f_slab[i] = v.field_shape;
                }
            }
        });
    scale_field(&mut field, &brain, p.bias);
    // Partial volume: blur the tissue image by about half a millimetre.
    let blurred = gaussian(&intensity, &grid, 0.6);
    let image = acquire(&blurred, &field, p);
    Phantom {
        image: to_array(&grid, image),
        brain_mask: to_array(&grid, brain),
        tissue: to_array(&grid, tissue),
        bias_field: to_array(&grid, field),
    }
}

/// The random shape of one phantom: head size, cortical folds, bias field.
struct Anatomy {
    semi: [f32; 3],
    centre: [f32; 3],
    /// Ripples of the grey/white boundaries: (θ frequency, φ frequency, phase, amplitude).
    folds: Vec<(f32, f32, f32, f32)>,
    field: FieldShape,
}

/// What one voxel holds.
struct Voxel {
    intensity: f32,
    in_brain: bool,
    label: u8,
    /// The bias field's shape here, before scaling to the requested strength.
    field_shape: f32,
}

impl Anatomy {
    fn new(p: &PhantomParams) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
        let folds = (0..6)
            .map(|_| {
                (
                    rng.random_range(3.0..9.0f32),
                    rng.random_range(3.0..9.0f32),
                    rng.random_range(0.0..std::f32::consts::TAU),
                    rng.random_range(0.01..0.025f32),
                )
            })
            .collect();
        // The head fills most of the field of view.
        let semi = std::array::from_fn(|a| 0.44 * p.shape[a] as f32 * p.voxel_mm[a]);
        Anatomy {
            semi,
            centre: std::array::from_fn(|a| (p.shape[a] as f32 - 1.0) / 2.0),
            folds,
            field: FieldShape::new(p.bias_kind, semi, &mut rng),
        }
    }

    fn voxel(&self, p: &PhantomParams, at: [usize; 3]) -> Voxel {
        let mm: [f32; 3] = std::array::from_fn(|a| (at[a] as f32 - self.centre[a]) * p.voxel_mm[a]);
        let u: [f32; 3] = std::array::from_fn(|a| mm[a] / self.semi[a]);
        let rho = (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]).sqrt();
        let theta = u[2].atan2((u[0] * u[0] + u[1] * u[1]).sqrt());
        let phi = u[1].atan2(u[0]);
        let fold: f32 = self
            .folds
            .iter()
            .map(|(a, b, c, amp)| amp * (a * theta + c).sin() * (b * phi).cos())
            .sum();
        let ventricle = ((u[0].abs() - 0.12) / 0.08).powi(2)
            + (u[1] / 0.28).powi(2)
            + ((u[2] - 0.08) / 0.14).powi(2)
            < 1.0;
        let (intensity, in_brain, label) = if rho > 1.0 {
            (0.0, false, 0)
        } else if rho > SKULL_R {
            (SCALP, false, 4)
        } else if rho > CSF_R {
            (SKULL, false, 4)
        } else if rho > BRAIN_R + fold {
            (CSF, false, 1)
        } else if ventricle {
            (CSF, true, 1)
        } else if rho > WM_R + 1.5 * fold {
            (WM - (WM - GM) * p.contrast, true, 2)
        } else {
            (WM, true, 3)
        };
        Voxel {
            intensity,
            in_brain,
            label,
            // Scaled to the requested strength by `scale_field`.
            field_shape: self.field.at(u, rho, mm),
        }
    }
}

/// Scales the field's shape so that its peak to peak inside the brain equals `bias` (0.4: the
/// field spans 0.8-1.2 there).
fn scale_field(field: &mut [f32], brain: &[u8], bias: f32) {
    let (lo, hi) = field
        .iter()
        .zip(brain)
        .filter(|(_, b)| **b != 0)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (&g, _)| {
            (lo.min(g), hi.max(g))
        });
    let (mid, span) = if hi > lo {
        ((lo + hi) / 2.0, hi - lo)
    } else {
        (0.0, 1.0)
    };
    field.par_iter_mut().for_each(|f| {
        let scaled = (1.0 + bias * (*f - mid) / span).max(0.2);
        // Rounded to 1e-4 so the stored truth compresses; far below any tolerance.
        *f = (scaled * 1e4).round() / 1e4;
    });
}

/// The stored image: tissue × gain × field, with Rician noise (magnitude of complex Gaussian
/// noise), seeded per slice.
fn acquire(tissue: &[f32], field: &[f32], p: &PhantomParams) -> Vec<i16> {
    let [nx, ny, _] = p.shape;
    let sigma = p.noise * WM_STORED * p.gain;
    tissue
        .par_chunks(nx * ny)
        .zip(field.par_chunks(nx * ny))
        .enumerate()
        .flat_map_iter(|(z, (slab, f_slab))| {
            let mut rng =
                rand::rngs::StdRng::seed_from_u64(p.seed.wrapping_mul(31).wrapping_add(z as u64));
            let normal = Normal::new(0.0f32, sigma.max(f32::MIN_POSITIVE)).expect("sigma > 0");
            slab.iter()
                .zip(f_slab)
                .map(|(&t, &f)| {
                    let s = t * WM_STORED * p.gain * f;
                    let (n1, n2) = if sigma > 0.0 {
                        (normal.sample(&mut rng), normal.sample(&mut rng))
                    } else {
                        (0.0, 0.0)
                    };
                    ((s + n1).hypot(n2)).round().min(i16::MAX as f32) as i16
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
