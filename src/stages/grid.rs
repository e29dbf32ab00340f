//! Geometry of a volume held as a flat x-fastest slice (NIfTI/Fortran order).

use ndarray::{Array3, ShapeBuilder};

/// Extents and voxel size of a volume whose voxels lie at `x + nx * (y + ny * z)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// `(nx, ny, nz)`.
    pub dims: [usize; 3],
    /// Voxel size in mm along x, y, z.
    pub spacing: [f32; 3],
}

impl Grid {
    /// A grid with the given extents and voxel size.
    pub fn new(dims: [usize; 3], spacing: [f32; 3]) -> Self {
        Self { dims, spacing }
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the grid holds no voxel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flat index of `(x, y, z)`.
    #[inline]
    pub fn index(&self, x: usize, y: usize, z: usize) -> usize {
        x + self.dims[0] * (y + self.dims[1] * z)
    }

    /// Volume of one voxel in mm³.
    pub fn voxel_volume_mm3(&self) -> f64 {
        self.spacing.iter().map(|&s| s as f64).product()
    }

    /// Calls `f(neighbour)` for each 6-connected neighbour of `index` (tests' reference
    /// searches; the stages fill whole runs instead).
    #[cfg(test)]
    pub fn for_each_neighbour(&self, index: usize, mut f: impl FnMut(usize)) {
        let [nx, ny, nz] = self.dims;
        let x = index % nx;
        let y = (index / nx) % ny;
        let z = index / (nx * ny);
        let sy = nx;
        let sz = nx * ny;
        if x > 0 {
            f(index - 1);
        }
        if x + 1 < nx {
            f(index + 1);
        }
        if y > 0 {
            f(index - sy);
        }
        if y + 1 < ny {
            f(index + sy);
        }
        if z > 0 {
            f(index - sz);
        }
        if z + 1 < nz {
            f(index + sz);
        }
    }

    /// Whether `index` lies on a face of the grid.
    #[cfg(test)]
    pub fn on_border(&self, index: usize) -> bool {
        let [nx, ny, nz] = self.dims;
        let x = index % nx;
        let y = (index / nx) % ny;
        let z = index / (nx * ny);
        x == 0 || y == 0 || z == 0 || x + 1 == nx || y + 1 == ny || z + 1 == nz
    }
}

/// The voxels of `array` as a flat x-fastest slice (copying only if the layout differs).
pub fn flat<T: Clone>(array: &Array3<T>) -> std::borrow::Cow<'_, [T]> {
    match array.as_slice_memory_order() {
        Some(s) if array.t().is_standard_layout() => std::borrow::Cow::Borrowed(s),
        _ => std::borrow::Cow::Owned(array.t().iter().cloned().collect()),
    }
}

/// The voxels of `array` as an owned flat x-fastest buffer: moved out when the array is
/// already in that layout (as read volumes are), copied otherwise.
pub fn into_flat<T: Clone>(array: Array3<T>) -> Vec<T> {
    if array.t().is_standard_layout() {
        let len = array.len();
        let (mut raw, offset) = array.into_raw_vec_and_offset();
        let start = offset.unwrap_or(0);
        raw.truncate(start + len);
        raw.drain(..start);
        return raw;
    }
    array.t().iter().cloned().collect()
}

/// Wrap a flat x-fastest buffer as an `Array3` of the grid's shape (Fortran order).
pub fn to_array<T>(grid: &Grid, data: Vec<T>) -> Array3<T> {
    let [nx, ny, nz] = grid.dims;
    Array3::from_shape_vec((nx, ny, nz).f(), data).expect("buffer length matches grid")
}

#[cfg(test)]
mod into_flat_tests {
    use super::*;

    #[test]
    fn moves_fortran_arrays_and_copies_others_in_x_fastest_order() {
        let f = Array3::from_shape_fn((2, 3, 4).f(), |(x, y, z)| x + 10 * y + 100 * z);
        let c = Array3::from_shape_fn((2, 3, 4), |(x, y, z)| x + 10 * y + 100 * z);
        let expected: Vec<usize> = (0..4)
            .flat_map(|z| (0..3).flat_map(move |y| (0..2).map(move |x| x + 10 * y + 100 * z)))
            .collect();
        assert_eq!(into_flat(f), expected);
        assert_eq!(into_flat(c), expected);
    }
}
