//! Storing a phantom in any axis order and direction, like scanners do (`RAS`, `LPS`,
//! `PIR`...): each letter says where increasing voxel index points along that voxel axis.

use ndarray::{Array3, Axis, ShapeBuilder};
use nifti::NiftiHeader;

/// Voxel axis directions: for voxel axis `k`, the world axis (0 R, 1 A, 2 S) and its sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisCodes {
    world: [usize; 3],
    positive: [bool; 3],
}

impl AxisCodes {
    /// `RAS`: voxel axes along +R, +A, +S.
    pub const RAS: Self = Self {
        world: [0, 1, 2],
        positive: [true; 3],
    };

    /// Parse three letters from R/L, A/P, S/I, one per world axis, e.g. `LPS`, `PIR`.
    pub fn parse(code: &str) -> Result<Self, String> {
        let letters: Vec<char> = code.trim().to_ascii_uppercase().chars().collect();
        let [a, b, c] = letters.as_slice() else {
            return Err(format!(
                "orientation '{code}' needs three letters, e.g. RAS or LPS"
            ));
        };
        let mut world = [0; 3];
        let mut positive = [true; 3];
        for (k, letter) in [a, b, c].into_iter().enumerate() {
            (world[k], positive[k]) = match letter {
                'R' => (0, true),
                'L' => (0, false),
                'A' => (1, true),
                'P' => (1, false),
                'S' => (2, true),
                'I' => (2, false),
                other => {
                    return Err(format!(
                        "orientation '{code}': '{other}' is not one of R L A P S I"
                    ));
                }
            };
        }
        if world[0] == world[1] || world[1] == world[2] || world[0] == world[2] {
            return Err(format!("orientation '{code}' names a world axis twice"));
        }
        Ok(Self { world, positive })
    }

    /// `array` (indexed R, A, S) stored in this orientation, Fortran order.
    pub fn apply<T: Clone>(&self, array: &Array3<T>) -> Array3<T> {
        let mut view = array.view().permuted_axes(self.world);
        for k in 0..3 {
            if !self.positive[k] {
                view.invert_axis(Axis(k));
            }
        }
        let (nx, ny, nz) = view.dim();
        Array3::from_shape_fn((nx, ny, nz).f(), |(i, j, k)| view[[i, j, k]].clone())
    }

    /// A header for an image of `dims` (already reoriented) whose RAS voxel size is
    /// `spacing_ras`: sform maps voxels to millimetres with the volume centred at 0.
    pub fn header(&self, dims: [usize; 3], spacing_ras: [f32; 3]) -> NiftiHeader {
        let mut rows = [[0f32; 4]; 3];
        for k in 0..3 {
            let w = self.world[k];
            let step = if self.positive[k] {
                spacing_ras[w]
            } else {
                -spacing_ras[w]
            };
            rows[w][k] = step;
            rows[w][3] -= step * (dims[k] as f32 - 1.0) / 2.0;
        }
        let spacing: [f32; 3] = std::array::from_fn(|k| spacing_ras[self.world[k]]);
        let mut header = crate::volume::new_header(dims, spacing);
        header.qform_code = 0;
        header.sform_code = 1;
        header.srow_x = rows[0];
        header.srow_y = rows[1];
        header.srow_z = rows[2];
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorients_data_and_affine_together() {
        let ras = Array3::from_shape_fn((2, 3, 4).f(), |(x, y, z)| (x * 100 + y * 10 + z) as i32);
        let lps = AxisCodes::parse("lps").unwrap();
        let out = lps.apply(&ras);
        assert_eq!(out.dim(), (2, 3, 4));
        assert_eq!(out[[0, 0, 0]], ras[[1, 2, 0]]);
        let pir = AxisCodes::parse("PIR").unwrap();
        let out = pir.apply(&ras);
        assert_eq!(out.dim(), (3, 4, 2));
        // Voxel (0,0,0) of PIR is the most posterior, most inferior, leftmost... of RAS.
        assert_eq!(out[[0, 0, 0]], ras[[0, 2, 3]]);
        let h = pir.header([3, 4, 2], [1.0, 2.0, 3.0]);
        assert_eq!(h.srow_y[0], -2.0, "voxel axis 0 runs posterior");
        assert_eq!(h.srow_z[1], -3.0, "voxel axis 1 runs inferior");
        assert_eq!(h.srow_x[2], 1.0, "voxel axis 2 runs right");
        assert!(AxisCodes::parse("RRS").is_err() && AxisCodes::parse("RA").is_err());
    }
}
