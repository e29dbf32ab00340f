//! NIfTI volumes: validated reading, atomic writing, and the in-memory [`Volume`].
//!
//! Volumes are held as `Array3<f32>` in Fortran (x-fastest) memory order, the order NIfTI
//! stores voxels in, so reading and writing never transpose and stages can walk the flat
//! slice directly (see [`crate::stages::grid`]).

mod header;
mod read;
mod write;

pub use header::{HeaderInfo, MAX_DIM, MAX_VOLUME_BYTES, inspect};
pub use read::read_volume;
pub use write::{derived_header, new_header, write_image};

use ndarray::Array3;
use nifti::NiftiHeader;
use std::path::PathBuf;

/// Why a NIfTI file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The operating system refused the read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: file is empty (0 bytes)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not a NIfTI-1 single-file image.
    #[error("{path}: not a NIfTI file: {reason}")]
    NotNifti {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// A valid NIfTI variant this tool does not handle.
    #[error("{path}: unsupported: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// The header contradicts itself or the file.
    #[error("{path}: invalid header: {reason}")]
    InvalidHeader {
        /// The file.
        path: PathBuf,
        /// The inconsistency.
        reason: String,
    },
    /// The voxels the header describes do not fit in the memory left to the process.
    #[error("{path}: not enough memory: cannot allocate {bytes} bytes for its voxels")]
    OutOfMemory {
        /// The file.
        path: PathBuf,
        /// The size of the buffer refused.
        bytes: u64,
    },
    /// The file ends before the voxel data the header promises.
    #[error("{path}: truncated: {reason}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// How much was expected and found.
        reason: String,
    },
    /// The voxels hold nothing a stage can work on.
    #[error("{path}: unusable image: {reason}")]
    NoSignal {
        /// The file.
        path: PathBuf,
        /// Why (all NaN, constant, ...).
        reason: String,
    },
    /// Writing an output failed.
    #[error("{path}: cannot write: {reason}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl VolumeError {
    /// A short type name for the error (recorded as `exception.type` on spans).
    pub fn kind(&self) -> &'static str {
        match self {
            VolumeError::Io { .. } => "IoError",
            VolumeError::Empty { .. } => "EmptyFile",
            VolumeError::NotNifti { .. } => "NotNifti",
            VolumeError::Unsupported { .. } => "UnsupportedNifti",
            VolumeError::InvalidHeader { .. } => "InvalidHeader",
            VolumeError::OutOfMemory { .. } => "OutOfMemory",
            VolumeError::Truncated { .. } => "TruncatedFile",
            VolumeError::NoSignal { .. } => "NoSignal",
            VolumeError::Write { .. } => "WriteError",
        }
    }
}

/// A 3-D scalar volume with the header it came from.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Voxel values, shape `(nx, ny, nz)`, Fortran memory order.
    pub data: Array3<f32>,
    /// The input's header: affine, pixdims and units are carried to every output.
    pub header: NiftiHeader,
    /// Voxel size in millimetres along x, y, z.
    pub spacing_mm: [f32; 3],
    /// Number of voxels that were NaN or infinite in the file (set to 0 on load).
    pub non_finite_voxels: usize,
}

impl Volume {
    /// `(nx, ny, nz)`.
    pub fn dims(&self) -> [usize; 3] {
        let s = self.data.shape();
        [s[0], s[1], s[2]]
    }
}
