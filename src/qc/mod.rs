//! QC pictures: for each brain mask in a finished output directory, axial, coronal and
//! sagittal mid-slices of the raw input with the mask outline in red, as one PNG — the
//! picture a person looks at before trusting a mask.

mod canvas;
mod orient;

use crate::derivatives::DatasetDescription;
use crate::derivatives::layout;
use crate::derivatives::sidecar::MaskSidecar;
use crate::volume::{self, VolumeError};
use canvas::Canvas;
use orient::Orientation;
use std::path::{Path, PathBuf};

/// One picture to make.
#[derive(Debug, Clone)]
pub struct QcItem {
    /// The raw input image (from the derivative's `Sources` and `DatasetLinks`).
    pub input: PathBuf,
    /// The brain mask.
    pub mask: PathBuf,
    /// Where the PNG goes.
    pub png: PathBuf,
}

/// Why QC could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QcError {
    /// The directory is not a neuro-batch output.
    #[error("{path}: not a neuro-batch output directory: {reason}")]
    NotOutput {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A volume could not be read.
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// The mask and the input have different grids.
    #[error("{mask}: grid {mask_dims:?} differs from the input's {input_dims:?}")]
    GridMismatch {
        /// The mask.
        mask: PathBuf,
        /// Its extents.
        mask_dims: [usize; 3],
        /// The input's extents.
        input_dims: [usize; 3],
    },
    /// Writing the picture failed.
    #[error("{path}: cannot write: {reason}")]
    Write {
        /// The PNG.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Every mask under `out_root` with the raw input it was made from.
pub fn find_items(out_root: &Path) -> Result<Vec<QcItem>, QcError> {
    let not_output = |reason: String| QcError::NotOutput {
        path: out_root.to_path_buf(),
        reason,
    };
    let raw = DatasetDescription::read(out_root)
        .map_err(not_output)?
        .raw_dataset()
        .ok_or_else(|| {
            not_output("no DatasetLinks.raw file:// link to the source dataset".into())
        })?;
    let mut masks: Vec<PathBuf> = ignore::WalkBuilder::new(out_root)
        .standard_filters(false)
        .max_depth(Some(4))
        .build()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| layout::is_brain_mask(p))
        .collect();
    masks.sort();
    let mut items = Vec::new();
    for mask in masks {
        let source = MaskSidecar::read(&layout::sidecar_of(&mask))
            .ok()
            .and_then(|s| s.raw_source());
        let Some(relative) = source else {
            tracing::warn!(
                "{}: no bids:raw source in its sidecar; skipped",
                mask.display()
            );
            continue;
        };
        items.push(QcItem {
            input: raw.join(relative),
            png: layout::qc_picture(out_root, &mask),
            mask,
        });
    }
    Ok(items)
}

/// Draw the picture for `item`: three mid-slices side by side, grey input, red outline.
pub fn draw(item: &QcItem) -> Result<(), QcError> {
    let (input, _) = volume::read_volume(&item.input)?;
    let (mask, _) = volume::read_volume(&item.mask)?;
    if input.dims() != mask.dims() {
        return Err(QcError::GridMismatch {
            mask: item.mask.clone(),
            mask_dims: mask.dims(),
            input_dims: input.dims(),
        });
    }
    let orientation = Orientation::of(&input.header);
    let window = display_window(input.data.as_slice_memory_order().expect("contiguous"));
    let panels: Vec<Canvas> = [2usize, 1, 0]
        .iter()
        .map(|&fixed| panel(&input, &mask, &orientation, fixed, window))
        .collect();
    let gap = 4;
    let width = panels.iter().map(|p| p.width).sum::<u32>() + gap * (panels.len() as u32 - 1);
    let height = panels.iter().map(|p| p.height).max().unwrap_or(1);
    let mut canvas = Canvas::new(width, height);
    let mut x0 = 0;
    for p in &panels {
        canvas.paste(p, x0, (height - p.height) / 2);
        x0 += p.width + gap;
    }
    let fail = |reason: String| QcError::Write {
        path: item.png.clone(),
        reason,
    };
    let bytes = canvas.png().map_err(|e| fail(e.to_string()))?;
    if let Some(dir) = item.png.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    neuro_batch_fsutil::write_atomic(&item.png, &bytes).map_err(|e| fail(e.to_string()))
}

/// Grey levels: the 1st to 99.5th percentile of the non-zero voxels.
fn display_window(values: &[f32]) -> (f32, f32) {
    let nonzero = |i: usize| values[i] != 0.0;
    let [lo, hi] =
        crate::stages::threshold::percentiles(values, nonzero, [1.0, 99.5]).unwrap_or([0.0, 1.0]);
    (lo, if hi > lo { hi } else { lo + 1.0 })
}

/// The mid-slice across world axis `fixed` (0 R, 1 A, 2 S), resampled to square pixels
/// (at most the smallest voxel size, at least 256 pixels across the head), anterior and
/// superior up, the subject's right on the right.
fn panel(
    input: &volume::Volume,
    mask: &volume::Volume,
    o: &Orientation,
    fixed: usize,
    window: (f32, f32),
) -> Canvas {
    let (cols, rows) = match fixed {
        2 => (0, 1), // axial: R across, A up
        1 => (0, 2), // coronal: R across, S up
        _ => (1, 2), // sagittal: A across, S up
    };
    let dims = input.dims();
    let extent = |w: usize| dims[o.axis[w]] as f32 * input.spacing_mm[o.axis[w]];
    // Square pixels no larger than the smallest voxel, and at least 256 across the head.
    let finest = input
        .spacing_mm
        .iter()
        .cloned()
        .fold(f32::INFINITY, f32::min);
    let widest = (0..3).map(extent).fold(0.0, f32::max);
    let pixel = finest.min(widest / 256.0);
    let (width, height) = (
        (extent(cols) / pixel).round().max(1.0) as u32,
        (extent(rows) / pixel).round().max(1.0) as u32,
    );
    let mid = dims[o.axis[fixed]] / 2;
    // Voxel index along world axis `w` at display fraction `t` in [0, 1), increasing along +w.
    let voxel = |w: usize, t: f32| -> usize {
        let n = dims[o.axis[w]];
        let k = ((t * n as f32) as usize).min(n - 1);
        if o.positive[w] { k } else { n - 1 - k }
    };
    let sample = |c: u32, r: u32| -> [usize; 3] {
        let mut idx = [0usize; 3];
        idx[o.axis[fixed]] = mid;
        idx[o.axis[cols]] = voxel(cols, (c as f32 + 0.5) / width as f32);
        // Row 0 is the top: the most anterior/superior.
        idx[o.axis[rows]] = voxel(rows, 1.0 - (r as f32 + 0.5) / height as f32);
        idx
    };
    let inside = |c: u32, r: u32| mask.data[sample(c, r)] > 0.0;
    let (lo, hi) = window;
    Canvas::from_fn(width, height, |c, r| {
        let on_edge = inside(c, r)
            && [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)]
                .iter()
                .any(|(dc, dr)| {
                    let (nc, nr) = (c as i64 + dc, r as i64 + dr);
                    nc < 0
                        || nr < 0
                        || nc >= width as i64
                        || nr >= height as i64
                        || !inside(nc as u32, nr as u32)
                });
        if on_edge {
            return [255, 40, 40];
        }
        let v = input.data[sample(c, r)];
        let g = (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0) as u8;
        [g, g, g]
    })
}
