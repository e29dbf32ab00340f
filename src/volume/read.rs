//! Reading a validated NIfTI-1 volume into `Array3<f32>`, converted in the buffer it is read
//! into.

use super::header::{gzip_or_io, open_stream, read_header, read_up_to};
use super::{HeaderInfo, Volume, VolumeError};
use ndarray::{Array3, ShapeBuilder};
use nifti::{Endianness, NiftiType};
use std::io::Read;
use std::path::Path;

/// Read `path` (`.nii` or `.nii.gz`, single or multi-member gzip) as a float volume.
///
/// The header is validated before anything is allocated; the voxel bytes are then read with
/// an exact length into a buffer whose pages are only backed as bytes arrive, so a truncated
/// or lying file fails with [`VolumeError::Truncated`] having used no more memory than it
/// holds. Stored values are converted to f32 in that same buffer and scaled by
/// `scl_slope`/`scl_inter` (when the slope is not 0). Non-finite voxels are set to 0 and
/// counted; a volume with no finite voxel or no contrast is rejected as
/// [`VolumeError::NoSignal`].
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

    // The voxels are read straight into the f32 buffer they end up in (sized for the wider of
    // the stored and the f32 voxels) and converted in place. Its size is the header's claim,
    // bounded by what the file can hold (validated with the header, at deflate's best ratio for
    // gzip); the buffer comes zeroed from the allocator without being touched, so a lying
    // header costs address space, not memory, and fails as truncated.
    let voxels = info.voxels() as usize;
    let words = voxels * info.bytes_per_voxel.max(4) / 4;
    let mut buffer: Vec<f32> =
        bytemuck::allocation::try_zeroed_vec(words).map_err(|()| VolumeError::OutOfMemory {
            path: path.to_path_buf(),
            bytes: words as u64 * 4,
        })?;
    let raw = &mut bytemuck::cast_slice_mut::<f32, u8>(&mut buffer)[..info.data_bytes as usize];
    let filled = read_up_to(&mut stream, raw).map_err(|e| gzip_or_io(path, e))?;
    if filled < raw.len() {
        return Err(truncated(path, &info, filled));
    }
    if info.compressed {
        verify_gzip_trailers(path, &mut stream)?;
    }
    let header = &info.header;
    to_f32_in_place(&mut buffer, info.datatype, header.endianness, voxels);
    buffer.truncate(voxels);
    if header.scl_slope != 0.0 {
        let (slope, inter) = (header.scl_slope, header.scl_inter);
        buffer.iter_mut().for_each(|v| *v = *v * slope + inter);
    }
    let [nx, ny, nz] = info.dims;
    let data = Array3::from_shape_vec((nx, ny, nz).f(), buffer).map_err(|e| {
        VolumeError::InvalidHeader {
            path: path.to_path_buf(),
            reason: format!("cannot shape voxels as {nx}x{ny}x{nz}: {e}"),
        }
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

/// Converts the first `voxels` stored values of `datatype` in byte order `endianness`, which
/// fill the start of `buffer`'s bytes, into the f32 values at the start of `buffer` (as `as`
/// casts them, which is what nifti's `into_ndarray::<f32>` does). Values narrower than 4
/// bytes are converted from the last one back, values as wide or wider from the first one
/// on, so that no value is overwritten before it is read.
fn to_f32_in_place(buffer: &mut [f32], datatype: NiftiType, endianness: Endianness, voxels: usize) {
    let swap = endianness != Endianness::native();
    let bytes = bytemuck::cast_slice_mut::<f32, u8>(buffer);
    fn convert<const B: usize>(
        bytes: &mut [u8],
        voxels: usize,
        swap: bool,
        value: impl Fn([u8; B]) -> f32,
    ) {
        let at = |bytes: &[u8], i: usize| {
            let mut b: [u8; B] = bytes[i * B..(i + 1) * B].try_into().expect("B bytes");
            if swap {
                b.reverse();
            }
            value(b)
        };
        if B < 4 {
            for i in (0..voxels).rev() {
                let v = at(bytes, i);
                bytes[i * 4..(i + 1) * 4].copy_from_slice(&v.to_ne_bytes());
            }
        } else {
            for i in 0..voxels {
                let v = at(bytes, i);
                bytes[i * 4..(i + 1) * 4].copy_from_slice(&v.to_ne_bytes());
            }
        }
    }
    match datatype {
        NiftiType::Uint8 => convert(bytes, voxels, false, |b: [u8; 1]| b[0] as f32),
        NiftiType::Int8 => convert(bytes, voxels, false, |b: [u8; 1]| b[0] as i8 as f32),
        NiftiType::Int16 => convert(bytes, voxels, swap, |b| i16::from_ne_bytes(b) as f32),
        NiftiType::Uint16 => convert(bytes, voxels, swap, |b| u16::from_ne_bytes(b) as f32),
        NiftiType::Int32 => convert(bytes, voxels, swap, |b| i32::from_ne_bytes(b) as f32),
        NiftiType::Uint32 => convert(bytes, voxels, swap, |b| u32::from_ne_bytes(b) as f32),
        NiftiType::Float32 if swap => {
            let words = &mut bytemuck::cast_slice_mut::<u8, u32>(bytes)[..voxels];
            words.iter_mut().for_each(|w| *w = w.swap_bytes());
        }
        NiftiType::Float32 => {}
        NiftiType::Float64 => convert(bytes, voxels, swap, |b| f64::from_ne_bytes(b) as f32),
        other => unreachable!("the header check admits no {other:?}"),
    }
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
