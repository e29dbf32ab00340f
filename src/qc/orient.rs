//! Which voxel axis points along each world (RAS) axis, from the sform or qform.

use nifti::NiftiHeader;

/// For world axes R, A, S: the voxel axis closest to it, and whether increasing that voxel
/// index moves towards +R/+A/+S.
#[derive(Debug, Clone, PartialEq)]
pub struct Orientation {
    /// `axis[w]`: voxel axis for world axis `w`.
    pub axis: [usize; 3],
    /// `positive[w]`: voxel index grows towards +w.
    pub positive: [bool; 3],
}

impl Orientation {
    /// From the header's sform (if set), else its qform, else identity.
    pub fn of(header: &NiftiHeader) -> Self {
        let m = if header.sform_code > 0 {
            [
                [header.srow_x[0], header.srow_x[1], header.srow_x[2]],
                [header.srow_y[0], header.srow_y[1], header.srow_y[2]],
                [header.srow_z[0], header.srow_z[1], header.srow_z[2]],
            ]
        } else if header.qform_code > 0 {
            quaternion_matrix(header)
        } else {
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        };
        Self::from_matrix(m)
    }

    /// From a world-from-voxel direction matrix (rows: world R, A, S; columns: voxel axes).
    fn from_matrix(m: [[f32; 3]; 3]) -> Self {
        let mut axis = [usize::MAX; 3];
        let mut positive = [true; 3];
        let mut taken = [false; 3];
        // Assign the strongest (world, voxel) pairs first, so the result is a permutation.
        let mut pairs: Vec<(usize, usize)> =
            (0..3).flat_map(|w| (0..3).map(move |v| (w, v))).collect();
        pairs.sort_by(|a, b| m[b.0][b.1].abs().total_cmp(&m[a.0][a.1].abs()));
        for (w, v) in pairs {
            if axis[w] == usize::MAX && !taken[v] {
                axis[w] = v;
                taken[v] = true;
                positive[w] = m[w][v] >= 0.0;
            }
        }
        Self { axis, positive }
    }
}

/// The rotation (times voxel size and qfac) of the qform.
fn quaternion_matrix(h: &NiftiHeader) -> [[f32; 3]; 3] {
    let (b, c, d) = (h.quatern_b, h.quatern_c, h.quatern_d);
    let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
    let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ];
    std::array::from_fn(|row| [r[row][0], r[row][1], r[row][2] * qfac])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_permuted_and_flipped_axes() {
        // The ITK example head: voxel x -> -R, voxel z -> +A, voxel y -> +S.
        let o = Orientation::from_matrix([[-2.0, 0.0, 0.0], [0.0, 0.0, 3.0], [0.0, 2.0, 0.0]]);
        assert_eq!(o.axis, [0, 2, 1]);
        assert_eq!(o.positive, [false, true, true]);
        let identity = Orientation::of(&NiftiHeader::default());
        assert_eq!(identity.axis, [0, 1, 2]);
    }
}
