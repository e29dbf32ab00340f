//! Reading a validated NIfTI-1 volume into `Array3<f32>`.

use super::header::{gzip_or_io, open_stream, read_header};
use super::{HeaderInfo, Volume, VolumeError};
use ndarray::{Array3, Ix3};
use nifti::InMemNiftiVolume;
use nifti::volume::ndarray::IntoNdArray;
use std::io::Read;
use std::path::Path;

/// Read `path` (`.nii` or `.nii.gz`, single or multi-member gzip) as a float volume.
///
/// The header is validated before anything is allocated; the voxel bytes are then read with
/// an exact length, so a truncated or lying file fails with [`VolumeError::Truncated`]
/// instead of allocating what its header claims. Non-finite voxels are set to 0 and counted;
/// a volume with no finite voxel or no contrast is rejected as [`VolumeError::NoSignal`].
pub fn read_volume(path: &Path) -> Result<(Volume, HeaderInfo), VolumeError> {
    let (mut stream, compressed, file_size) = open_stream(path)?;
    let info = read_header(path, &mut stream, compressed, file_size)?;

    // Skip extensions between the header and the voxels.
    let skip = info.vox_offset - 348;
    let skipped = std::io::copy(&mut (&mut stream).take(skip), &mut std::io::sink())
        .map_err(|e| gzip_or_io(path, e))?;
    if skipped < skip {
        return Err(truncated(path, &info, 0));
    }

    // The claimed size is bounded by what the file can hold (validated with the header, at
    // deflate's best ratio for gzip) and a reservation only maps pages as bytes are written,
    // so a lying header costs address space, not memory; reserving up front spares the copies
    // and page faults of a doubling buffer. Where even the address space is refused, grow.
    let mut raw = Vec::new();
    let _ = raw.try_reserve_exact(info.data_bytes as usize);
    (&mut stream)
        .take(info.data_bytes)
        .read_to_end(&mut raw)
        .map_err(|e| gzip_or_io(path, e))?;
    if (raw.len() as u64) < info.data_bytes {
        return Err(truncated(path, &info, raw.len()));
    }
    if info.compressed {
        verify_gzip_trailers(path, &mut stream)?;
    }

    let header = &info.header;
    let voxels = InMemNiftiVolume::from_raw_data(header, raw)
        .and_then(|v| v.into_ndarray::<f32>())
        .map_err(|e| VolumeError::InvalidHeader {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let [nx, ny, nz] = info.dims;
    // A single-volume 4-D image has trailing axes of length 1; drop them.
    let data: Array3<f32> = voxels
        .into_shape_with_order(((nx, ny, nz), ndarray::Order::ColumnMajor))
        .and_then(|a| a.into_dimensionality::<Ix3>())
        .map_err(|e| VolumeError::InvalidHeader {
            path: path.to_path_buf(),
            reason: format!("cannot shape voxels as {nx}x{ny}x{nz}: {e}"),
        })?;
    let (data, non_finite_voxels) = sanitize(path, data)?;
    let volume = Volume {
        data,
        header: info.header.clone(),
        spacing_mm: info.spacing_mm,
        non_finite_voxels,
    };
    Ok((volume, info))
}

/// Most decompressed bytes accepted after the voxel data (real files have none).
const MAX_TRAILING_BYTES: u64 = 64 << 20;

/// Reads the gzip stream to its end, which makes the decoder check every member's CRC-32 and
/// length: a flipped bit or a cut-off trailer is an error, not silently different voxels.
fn verify_gzip_trailers(path: &Path, stream: &mut dyn Read) -> Result<(), VolumeError> {
    let trailing = std::io::copy(
        &mut stream.take(MAX_TRAILING_BYTES + 1),
        &mut std::io::sink(),
    )
    .map_err(|e| gzip_or_io(path, e))?;
    if trailing > MAX_TRAILING_BYTES {
        return Err(VolumeError::InvalidHeader {
            path: path.to_path_buf(),
            reason: format!(
                "more than {MAX_TRAILING_BYTES} bytes follow the voxel data: not a single NIfTI volume"
            ),
        });
    }
    Ok(())
}

fn truncated(path: &Path, info: &HeaderInfo, got: usize) -> VolumeError {
    VolumeError::Truncated {
        path: path.to_path_buf(),
        reason: format!(
            "expected {} bytes of voxel data ({}x{}x{} {}), found {got}",
            info.data_bytes,
            info.dims[0],
            info.dims[1],
            info.dims[2],
            info.dtype_name()
        ),
    }
}

/// Replace NaN/Inf with 0 and reject volumes without usable signal.
fn sanitize(path: &Path, mut data: Array3<f32>) -> Result<(Array3<f32>, usize), VolumeError> {
    let mut non_finite = 0usize;
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    // Walk memory order: logical order on this Fortran-order array would stride.
    let voxels = data
        .as_slice_memory_order_mut()
        .expect("freshly read volumes are contiguous");
    for v in voxels.iter_mut() {
        if v.is_finite() {
            lo = lo.min(*v);
            hi = hi.max(*v);
        } else {
            non_finite += 1;
            *v = 0.0;
        }
    }
    let no_signal = |reason: String| VolumeError::NoSignal {
        path: path.to_path_buf(),
        reason,
    };
    if non_finite == data.len() {
        return Err(no_signal("every voxel is NaN or infinite".into()));
    }
    if lo == hi {
        return Err(no_signal(format!("every voxel has the same value ({lo})")));
    }
    Ok((data, non_finite))
}
