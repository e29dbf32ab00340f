//! Atomic NIfTI writing: a temporary file in the destination directory, renamed into place.

use super::VolumeError;
use flate2::Compression;
use ndarray::{ArrayBase, Data, Ix3};
use nifti::NiftiHeader;
use nifti::writer::WriterOptions;
use std::path::Path;

/// NIFTI_UNITS_MM in the spatial bits of `xyzt_units`.
const UNITS_MM: u8 = 2;

/// The input's header with what must change for a derived image: units in mm, display range
/// and intent cleared, a description naming neuro-batch. sform/qform, pixdims and
/// orientation are kept; the writer takes dim and datatype from the array and resets
/// `scl_slope`/`scl_inter`.
pub fn derived_header(input: &NiftiHeader) -> NiftiHeader {
    let mut header = input.clone();
    let spatial = header.xyzt_units & 0x07;
    if spatial == 0 || spatial == UNITS_MM {
        header.xyzt_units = (header.xyzt_units & !0x07) | UNITS_MM;
    }
    header.cal_min = 0.0;
    header.cal_max = 0.0;
    header.glmin = 0;
    header.glmax = 0;
    header.intent_code = 0;
    header.intent_name = [0; 16];
    header.descrip = format!("neuro-batch {}", env!("CARGO_PKG_VERSION")).into_bytes();
    header
}

/// A header for a new image of voxel size `spacing_mm`, with sform and qform both mapping
/// voxel indices to millimetres, centred on the volume (scanner RAS axes).
pub fn new_header(dims: [usize; 3], spacing_mm: [f32; 3]) -> NiftiHeader {
    let origin: [f32; 3] = std::array::from_fn(|a| -(dims[a] as f32 - 1.0) / 2.0 * spacing_mm[a]);
    let mut header = NiftiHeader {
        pixdim: [
            1.0,
            spacing_mm[0],
            spacing_mm[1],
            spacing_mm[2],
            1.0,
            1.0,
            1.0,
            1.0,
        ],
        xyzt_units: UNITS_MM,
        qform_code: 1,
        sform_code: 1,
        quatern_b: 0.0,
        quatern_c: 0.0,
        quatern_d: 0.0,
        quatern_x: origin[0],
        quatern_y: origin[1],
        quatern_z: origin[2],
        srow_x: [spacing_mm[0], 0.0, 0.0, origin[0]],
        srow_y: [0.0, spacing_mm[1], 0.0, origin[1]],
        srow_z: [0.0, 0.0, spacing_mm[2], origin[2]],
        ..NiftiHeader::default()
    };
    header.descrip = format!("neuro-batch {}", env!("CARGO_PKG_VERSION")).into_bytes();
    header
}

/// Write `data` (shape `(nx, ny, nz)`, ideally Fortran order) with `header`'s geometry to
/// `path` (`.nii` or `.nii.gz`) through a temporary file; returns the bytes written.
pub fn write_image<A, S>(
    path: &Path,
    header: &NiftiHeader,
    data: &ArrayBase<S, Ix3>,
    compression_level: u32,
) -> Result<u64, VolumeError>
where
    S: Data<Elem = A>,
    A: nifti::DataElement + bytemuck::Pod,
{
    let fail = |reason: String| VolumeError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let dir = path
        .parent()
        .ok_or_else(|| fail("no parent directory".into()))?;
    let name = path
        .file_name()
        .ok_or_else(|| fail("no file name".into()))?
        .to_string_lossy();
    let suffix = if name.ends_with(".nii.gz") {
        ".nii.gz"
    } else {
        ".nii"
    };
    // The extension decides whether the crate compresses, so the temp name keeps it.
    let tmp = neuro_batch_fsutil::temp_builder()
        .suffix(suffix)
        .tempfile_in(dir)
        .map_err(|e| {
            fail(format!(
                "cannot create a temporary file in {}: {e}",
                dir.display()
            ))
        })?;
    let mut options = WriterOptions::new(tmp.path()).reference_header(header);
    if suffix == ".nii.gz" {
        // Setting a level forces gzip (and a .nii.gz path) in the crate, so only here.
        options = options.compression_level(Compression::new(compression_level));
    }
    options
        .write_nifti(data)
        .map_err(|e| fail(nifti_message(e)))?;
    let written = std::fs::metadata(tmp.path())
        .map(|m| m.len())
        .map_err(|e| fail(e.to_string()))?;
    if written == 0 {
        return Err(fail("the NIfTI writer produced an empty file".into()));
    }
    tmp.persist(path).map_err(|e| fail(e.error.to_string()))?;
    Ok(written)
}

/// The nifti crate's error as one line: its `Io` variant displays as Rust debug output
/// (`Io(Os { code: 28, .. })`), so the I/O error is shown by itself.
fn nifti_message(e: nifti::NiftiError) -> String {
    match e {
        nifti::NiftiError::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}
