//! The shapes of a phantom's multiplicative bias field, before it is scaled to the requested
//! strength. None of them is drawn from the B-spline space the bias correction fits with, so a
//! good score is not the model recognising itself.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// What the bias field looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BiasKind {
    /// A linear gradient along a random direction plus a central bump: a low-order field.
    Poly,
    /// The low-order trend of `Poly` plus random variation smoothed to `length_mm`: a
    /// Gaussian random field whose correlation falls to e^(-1/2) at that distance, as left
    /// by the transmit field and the body's dielectric effects.
    Smooth {
        /// Correlation length, mm.
        length_mm: f32,
    },
    /// The root-sum-of-squares sensitivity of a receive array: `coils` loops evenly spaced
    /// on a ring around the head, at random heights near its equator.
    Coil {
        /// Number of receive loops.
        coils: usize,
    },
}

/// Coil geometry of an 8-channel head array: loops about 9 cm across on a former about 25 cm
/// wide, around a head about 16 cm wide — the ring at 1.35 and the loop radius at 0.6 of the
/// head's semi-axes.
const RING: f32 = 1.35;
const LOOP: f32 = 0.6;

/// Random Fourier modes of the smooth variation (more modes, closer to Gaussian).
const MODES: usize = 64;

/// One drawn field shape, evaluated voxel by voxel.
#[derive(Debug)]
pub struct FieldShape {
    /// Direction of the linear trend.
    direction: [f32; 3],
    variation: Variation,
}

#[derive(Debug)]
enum Variation {
    None,
    /// `Σ amplitude · cos(ω·x + phase)` over modes `(ω in rad/mm, phase)`.
    Modes(Vec<([f32; 3], f32)>, f32),
    /// Loop centres (mm from the head's centre) and loop radius (mm).
    Coils(Vec<[f32; 3]>, f32),
}

impl FieldShape {
    /// Draws a field of `kind` for a head with semi-axes `semi` (mm). The trend's direction
    /// is drawn first, so a `Poly` field is the same for the same generator state.
    pub fn new(kind: BiasKind, semi: [f32; 3], rng: &mut impl Rng) -> FieldShape {
        let direction = std::array::from_fn(|_| rng.random_range(-1.0..1.0f32));
        let variation = match kind {
            BiasKind::Poly => Variation::None,
            BiasKind::Smooth { length_mm } => {
                let length = length_mm.max(1.0);
                let modes = (0..MODES)
                    .map(|_| {
                        let omega = std::array::from_fn(|_| {
                            let n: f32 = StandardNormal.sample(rng);
                            n / length
                        });
                        (omega, rng.random_range(0.0..std::f32::consts::TAU))
                    })
                    .collect();
                // Unit variance: each mode's cosine has variance 1/2.
                Variation::Modes(modes, (2.0 / MODES as f32).sqrt())
            }
            BiasKind::Coil { coils } => {
                let coils = coils.max(1);
                let offset = rng.random_range(0.0..std::f32::consts::TAU);
                let centres = (0..coils)
                    .map(|k| {
                        let angle = offset + std::f32::consts::TAU * k as f32 / coils as f32;
                        let height = rng.random_range(-0.25..0.25f32);
                        [
                            RING * semi[0] * angle.cos(),
                            RING * semi[1] * angle.sin(),
                            height * semi[2],
                        ]
                    })
                    .collect();
                let radius = LOOP * (semi[0] + semi[1] + semi[2]) / 3.0;
                Variation::Coils(centres, radius)
            }
        };
        FieldShape {
            direction,
            variation,
        }
    }

    /// The shape at `u` (position over the head's semi-axes) and `mm` (position from the
    /// head's centre); `rho` is `|u|`.
    pub fn at(&self, u: [f32; 3], rho: f32, mm: [f32; 3]) -> f32 {
        let d = self.direction;
        let trend =
            0.6 * (d[0] * u[0] + d[1] * u[1] + d[2] * u[2]) + 0.4 * (-(rho * rho) / 0.5).exp();
        match &self.variation {
            Variation::None => trend,
            Variation::Modes(modes, amplitude) => {
                let noise: f32 = modes
                    .iter()
                    .map(|(w, phase)| (w[0] * mm[0] + w[1] * mm[1] + w[2] * mm[2] + phase).cos())
                    .sum();
                trend + 0.35 * amplitude * noise
            }
            Variation::Coils(centres, radius) => {
                let a2 = radius * radius;
                centres
                    .iter()
                    .map(|c| {
                        let d2: f32 = (0..3).map(|k| (mm[k] - c[k]).powi(2)).sum();
                        // On-axis field of a current loop, normalised to 1 at its centre.
                        (a2 / (a2 + d2)).powf(1.5).powi(2)
                    })
                    .sum::<f32>()
                    .sqrt()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn smooth_variation_has_about_unit_variance_and_the_chosen_length() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let shape = FieldShape::new(BiasKind::Smooth { length_mm: 30.0 }, [70.0; 3], &mut rng);
        let noise = |mm: [f32; 3]| shape.at([0.0; 3], 0.0, mm) - 0.4;
        // Over many independent points the variance of the variation is 0.35² (± sampling).
        let values: Vec<f32> = (0..2000)
            .map(|i| {
                noise([
                    (i % 13) as f32 * 97.0,
                    (i / 13 % 13) as f32 * 89.0,
                    (i / 169) as f32 * 83.0,
                ])
            })
            .collect();
        let var = values.iter().map(|v| v * v).sum::<f32>() / values.len() as f32;
        assert!((var / 0.35f32.powi(2) - 1.0).abs() < 0.35, "{var}");
        // Nearby points agree, distant ones do not.
        let near: f32 = (0..200)
            .map(|i| {
                let p = [i as f32 * 50.0, 0.0, 0.0];
                (noise(p) - noise([p[0] + 3.0, 0.0, 0.0])).powi(2)
            })
            .sum::<f32>()
            / 200.0;
        assert!(near < 0.05 * 2.0 * var, "{near} vs {var}");
    }

    #[test]
    fn a_coil_array_is_brightest_near_its_loops() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let shape = FieldShape::new(BiasKind::Coil { coils: 8 }, [70.0, 80.0, 70.0], &mut rng);
        let centre = shape.at([0.0; 3], 0.0, [0.0; 3]);
        let Variation::Coils(centres, _) = &shape.variation else {
            unreachable!()
        };
        let c = centres[0];
        let near = [0.8 * c[0], 0.8 * c[1], c[2]];
        assert!(shape.at([0.0; 3], 0.0, near) > 2.0 * centre);
    }
}
