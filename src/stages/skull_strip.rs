//! Brain extraction by robust threshold and morphology: Otsu on a smoothed volume, a
//! spherical erosion that cuts the thin bridges between brain and scalp, the largest
//! connected component, a dilation by the same radius (kept inside the foreground), a small
//! margin that takes in the surrounding CSF, a closing that smooths the surface, and hole
//! filling. All radii are in millimetres, so anisotropic voxels get true spheres.

use super::grid::Grid;
use super::{Fact, Facts, StageError, filter, morphology, threshold};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Skull-strip parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Gaussian smoothing before thresholding, mm.
    pub smoothing_mm: f32,
    /// Radius of the erosion that separates brain from scalp, mm (the dilation matches it).
    pub opening_radius_mm: f32,
    /// Extra dilation after the opening that takes in the CSF around the brain, mm.
    pub margin_mm: f32,
    /// Radius of the closing that smooths the mask surface, mm.
    pub closing_radius_mm: f32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            smoothing_mm: 1.0,
            opening_radius_mm: 6.0,
            margin_mm: 2.0,
            closing_radius_mm: 4.0,
        }
    }
}

/// A brain mask and what it took to get it.
#[derive(Debug)]
pub struct Output {
    /// 0/1 per voxel, x-fastest.
    pub mask: Vec<u8>,
    /// Facts: `threshold`, `brain_volume_ml`, `brain_voxels`.
    pub facts: Facts,
}

/// Compute a brain mask for `image`.
pub fn strip(image: &[f32], grid: &Grid, params: &Params) -> Result<Output, StageError> {
    // Each intermediate is dropped as soon as the next step has read it, so that the step
    // after that gets its block back from the allocator's recycled ones (`crate::malloc`)
    // instead of fresh pages the kernel must zero.
    let (head, t) = foreground(&filter::gaussian(image, grid, params.smoothing_mm))?;
    let core = {
        let eroded = morphology::erode(&head, grid, params.opening_radius_mm);
        morphology::largest_component(&eroded, grid)
    };
    let mut within_head = morphology::dilate(&core, grid, params.opening_radius_mm);
    drop(core);
    within_head
        .par_iter_mut()
        .zip(&head)
        .for_each(|(g, &h)| *g &= h);
    drop(head);
    let with_margin = morphology::dilate(&within_head, grid, params.margin_mm);
    drop(within_head);
    let closed = {
        let dilated = morphology::dilate(&with_margin, grid, params.closing_radius_mm);
        drop(with_margin);
        morphology::erode(&dilated, grid, params.closing_radius_mm)
    };
    let mask = morphology::fill_holes(&closed, grid);
    drop(closed);

    let voxels = mask.par_iter().filter(|&&m| m != 0).count();
    if voxels == 0 {
        return Err(StageError::Degenerate {
            stage: "skull_strip",
            reason: format!(
                "no brain left after a {} mm opening (threshold {t})",
                params.opening_radius_mm
            ),
        });
    }
    let ml = voxels as f64 * grid.voxel_volume_mm3() / 1000.0;
    Ok(Output {
        mask,
        facts: vec![
            ("threshold", Fact::Float(t as f64)),
            ("brain_voxels", Fact::Int(voxels as i64)),
            ("brain_volume_ml", Fact::Float(ml)),
        ],
    })
}

/// The head (everything above Otsu's threshold of a smoothed image, holes filled). Used as
/// the working mask when skull stripping is not requested.
pub fn head_mask(image: &[f32], grid: &Grid, params: &Params) -> Result<Vec<u8>, StageError> {
    let smoothed = filter::gaussian(image, grid, params.smoothing_mm);
    let (head, _) = foreground(&smoothed)?;
    Ok(morphology::fill_holes(&head, grid))
}

fn foreground(smoothed: &[f32]) -> Result<(Vec<u8>, f32), StageError> {
    let t = threshold::otsu(smoothed).ok_or_else(|| StageError::Degenerate {
        stage: "skull_strip",
        reason: "no intensity contrast to threshold".into(),
    })?;
    Ok((smoothed.par_iter().map(|&v| u8::from(v > t)).collect(), t))
}
