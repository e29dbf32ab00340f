//! Header inspection: parse the first 348 bytes and check them against the file before a
//! single voxel is allocated.

use super::VolumeError;
use flate2::bufread::MultiGzDecoder;
use nifti::{NiftiHeader, NiftiType};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Largest accepted extent along any axis.
pub const MAX_DIM: usize = 8192;
/// Largest accepted voxel payload (16 GiB); larger claims are rejected before allocating.
pub const MAX_VOLUME_BYTES: u64 = 16 << 30;
/// Accepted voxel sizes, mm (after `xyzt_units`): from ex-vivo microscopy-grade MRI (50 µm) to
/// coarse spectroscopic grids. Every kernel radius and distance the stages derive is bounded by
/// the image extent divided by these.
pub const VOXEL_MM: std::ops::RangeInclusive<f32> = 0.05..=100.0;
/// The first byte voxel data may start at in a single file: the 348-byte header plus the
/// 4-byte extension flag.
pub const MIN_VOX_OFFSET: u64 = 352;
/// DEFLATE cannot expand data by more than ~1032:1; a gzip file claiming more is lying.
const MAX_DEFLATE_RATIO: u64 = 1032;
const NIFTI1_HEADER_BYTES: usize = 348;
const NIFTI2_HEADER_BYTES: i32 = 540;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What a validated header says about the voxel data that follows it.
#[derive(Debug, Clone)]
pub struct HeaderInfo {
    /// The parsed header (scl fields normalised: a non-finite slope means "no scaling").
    pub header: NiftiHeader,
    /// `(nx, ny, nz)`.
    pub dims: [usize; 3],
    /// Stored voxel type.
    pub datatype: NiftiType,
    /// Bytes per stored voxel.
    pub bytes_per_voxel: usize,
    /// Bytes of voxel data the file must hold after `vox_offset`.
    pub data_bytes: u64,
    /// Byte offset of the voxel data in the (decompressed) stream.
    pub vox_offset: u64,
    /// Voxel size in millimetres.
    pub spacing_mm: [f32; 3],
    /// Whether the file is gzip-compressed.
    pub compressed: bool,
    /// Size of the file on disk.
    pub file_size: u64,
}

impl HeaderInfo {
    /// Number of voxels.
    pub fn voxels(&self) -> u64 {
        self.dims.iter().map(|&d| d as u64).product()
    }

    /// Rough peak memory to process this volume: the raw bytes plus the f32 working arrays
    /// the stages keep alive at once (image, smoothed copy, distance map, field, output).
    pub fn working_bytes(&self) -> u64 {
        self.data_bytes + self.voxels() * 4 * 6
    }

    /// A short name for the stored type, e.g. `int16`.
    pub fn dtype_name(&self) -> &'static str {
        dtype_name(self.datatype)
    }
}

/// Open a reader positioned at the start of the (decompressed) header.
pub(super) fn open_stream(path: &Path) -> Result<(Box<dyn Read>, bool, u64), VolumeError> {
    let io = |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = neuro_batch_fsutil::open_regular(path).map_err(io)?;
    let file_size = file.metadata().map_err(io)?.len();
    if file_size == 0 {
        return Err(VolumeError::Empty {
            path: path.to_path_buf(),
        });
    }
    // The read buffer is the decoder's too (flate2's `bufread` decoder adds none of its own),
    // and 1 MiB sits above the mmap threshold: no per-file temporary is left to fragment the
    // heap among the records a batch keeps (see `crate::malloc`).
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head = reader.fill_buf().map_err(io)?;
    let is_gzip = head.starts_with(&GZIP_MAGIC);
    let named_gz = path.to_string_lossy().ends_with(".gz");
    if named_gz && !is_gzip {
        return Err(VolumeError::NotNifti {
            path: path.to_path_buf(),
            reason: format!(
                "named .gz but not gzip-compressed ({})",
                describe_bytes(&head[..head.len().min(2)])
            ),
        });
    }
    let stream: Box<dyn Read> = if is_gzip {
        Box::new(MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    Ok((stream, is_gzip, file_size))
}

/// Read and validate the header of `path` without reading any voxel data.
pub fn inspect(path: &Path) -> Result<HeaderInfo, VolumeError> {
    let (mut stream, compressed, file_size) = open_stream(path)?;
    read_header(path, &mut stream, compressed, file_size)
}

/// Parse and validate the header from a stream positioned at its first byte.
pub(super) fn read_header(
    path: &Path,
    stream: &mut dyn Read,
    compressed: bool,
    file_size: u64,
) -> Result<HeaderInfo, VolumeError> {
    let mut raw = [0u8; NIFTI1_HEADER_BYTES];
    let got = read_up_to(stream, &mut raw).map_err(|e| gzip_or_io(path, e))?;
    let sizeof_hdr = if got >= 4 {
        i32::from_le_bytes(raw[..4].try_into().expect("4 bytes"))
    } else {
        0
    };
    if sizeof_hdr == NIFTI2_HEADER_BYTES || sizeof_hdr.swap_bytes() == NIFTI2_HEADER_BYTES {
        return Err(VolumeError::Unsupported {
            path: path.to_path_buf(),
            reason: "NIfTI-2 files are not supported (convert to NIfTI-1)".into(),
        });
    }
    if sizeof_hdr != NIFTI1_HEADER_BYTES as i32
        && sizeof_hdr.swap_bytes() != NIFTI1_HEADER_BYTES as i32
    {
        let reason = if got < 4 {
            format!("only {got} bytes, too short for a NIfTI header")
        } else {
            format!(
                "sizeof_hdr is not 348 ({})",
                describe_bytes(&raw[..got.min(8)])
            )
        };
        return Err(VolumeError::NotNifti {
            path: path.to_path_buf(),
            reason,
        });
    }
    if got < NIFTI1_HEADER_BYTES {
        return Err(VolumeError::Truncated {
            path: path.to_path_buf(),
            reason: format!("header needs 348 bytes, file holds {got}"),
        });
    }
    let magic: &[u8] = &raw[344..348];
    match magic {
        b"n+1\0" => {}
        b"ni1\0" => {
            return Err(VolumeError::Unsupported {
                path: path.to_path_buf(),
                reason: "header/image pairs (.hdr/.img) are not supported; use a single .nii file"
                    .into(),
            });
        }
        other => {
            return Err(VolumeError::NotNifti {
                path: path.to_path_buf(),
                reason: format!(
                    "missing NIfTI-1 magic 'n+1' (found {}; ANALYZE 7.5 is not supported)",
                    describe_bytes(other)
                ),
            });
        }
    }

    let header = NiftiHeader::from_reader(&raw[..]).map_err(|e| VolumeError::InvalidHeader {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    validate(path, header, compressed, file_size)
}

/// Why a header was refused; [`Refusal::at`] names the file.
enum Refusal {
    Invalid(String),
    Unsupported(String),
    Truncated(String),
}

impl Refusal {
    fn at(self, path: &Path) -> VolumeError {
        let path = path.to_path_buf();
        match self {
            Refusal::Invalid(reason) => VolumeError::InvalidHeader { path, reason },
            Refusal::Unsupported(reason) => VolumeError::Unsupported { path, reason },
            Refusal::Truncated(reason) => VolumeError::Truncated { path, reason },
        }
    }
}

/// Every field the reader and the stages size anything from, checked against the limits above
/// and against the file.
fn validate(
    path: &Path,
    header: NiftiHeader,
    compressed: bool,
    file_size: u64,
) -> Result<HeaderInfo, VolumeError> {
    checked(header, compressed, file_size).map_err(|r| r.at(path))
}

fn checked(
    mut header: NiftiHeader,
    compressed: bool,
    file_size: u64,
) -> Result<HeaderInfo, Refusal> {
    let dims = extents(&header)?;
    let (datatype, bytes_per_voxel) = voxel_type(&header)?;
    let data_bytes = payload(dims, datatype, bytes_per_voxel)?;
    let vox_offset = data_offset(&header, data_bytes, compressed, file_size)?;
    let spacing_mm = spacing(&header)?;
    if !header.scl_slope.is_finite() || !header.scl_inter.is_finite() {
        // NIfTI: slope 0 means "no scaling"; nibabel treats NaN the same way.
        header.scl_slope = 0.0;
        header.scl_inter = 0.0;
    }
    Ok(HeaderInfo {
        header,
        dims,
        datatype,
        bytes_per_voxel,
        data_bytes,
        vox_offset,
        spacing_mm,
        compressed,
        file_size,
    })
}

/// `(nx, ny, nz)` of a 3-D image (or a 4-D one holding a single volume).
fn extents(header: &NiftiHeader) -> Result<[usize; 3], Refusal> {
    let ndim = header.dim[0] as usize;
    if !(1..=7).contains(&ndim) {
        return Err(Refusal::Invalid(format!("dim[0] = {ndim}, must be 1..7")));
    }
    let mut extents = [1usize; 7];
    for (axis, extent) in extents.iter_mut().enumerate().take(ndim) {
        // Dimensions are signed 16-bit in the file; the crate reads them unsigned.
        let value = header.dim[axis + 1] as i16;
        if value <= 0 {
            return Err(Refusal::Invalid(format!(
                "dim[{}] = {value}, must be positive",
                axis + 1
            )));
        }
        *extent = value as usize;
    }
    if ndim < 3 {
        return Err(Refusal::Unsupported(format!(
            "{ndim}-D image; a 3-D volume is required"
        )));
    }
    let volumes: usize = extents[3..].iter().product();
    if volumes > 1 {
        return Err(Refusal::Unsupported(format!(
            "{ndim}-D image with {volumes} volumes; only 3-D or single-volume 4-D images are supported"
        )));
    }
    let dims = [extents[0], extents[1], extents[2]];
    if let Some(&big) = dims.iter().find(|&&d| d > MAX_DIM) {
        return Err(Refusal::Invalid(format!(
            "extent {big} exceeds the supported maximum of {MAX_DIM}"
        )));
    }
    Ok(dims)
}

/// The stored voxel type and its size in bytes.
fn voxel_type(header: &NiftiHeader) -> Result<(NiftiType, usize), Refusal> {
    let datatype = header
        .data_type()
        .map_err(|_| Refusal::Unsupported(format!("unknown datatype code {}", header.datatype)))?;
    let bytes_per_voxel = match datatype {
        NiftiType::Uint8 | NiftiType::Int8 => 1,
        NiftiType::Int16 | NiftiType::Uint16 => 2,
        NiftiType::Int32 | NiftiType::Uint32 | NiftiType::Float32 => 4,
        NiftiType::Float64 => 8,
        other => {
            return Err(Refusal::Unsupported(format!(
                "datatype {} (code {}); supported: uint8, int8, int16, uint16, int32, uint32, float32, float64",
                dtype_name(other),
                header.datatype
            )));
        }
    };
    Ok((datatype, bytes_per_voxel))
}

/// Bytes of voxel data, within [`MAX_VOLUME_BYTES`].
fn payload(dims: [usize; 3], datatype: NiftiType, bytes_per_voxel: usize) -> Result<u64, Refusal> {
    let voxels: u64 = dims.iter().map(|&d| d as u64).product();
    let data_bytes = voxels * bytes_per_voxel as u64;
    if data_bytes > MAX_VOLUME_BYTES {
        return Err(Refusal::Invalid(format!(
            "{}x{}x{} {} needs {} bytes, above the {} byte limit",
            dims[0],
            dims[1],
            dims[2],
            dtype_name(datatype),
            data_bytes,
            MAX_VOLUME_BYTES
        )));
    }
    Ok(data_bytes)
}

/// Where the voxels start; the file must be able to hold them after that.
fn data_offset(
    header: &NiftiHeader,
    data_bytes: u64,
    compressed: bool,
    file_size: u64,
) -> Result<u64, Refusal> {
    let offset = header.vox_offset;
    if !offset.is_finite() || offset < MIN_VOX_OFFSET as f32 || offset > (64 << 20) as f32 {
        return Err(Refusal::Invalid(format!(
            "vox_offset {offset} is out of range (a single-file NIfTI-1 image stores its voxels \
             at {MIN_VOX_OFFSET} or later)"
        )));
    }
    let vox_offset = offset as u64;
    let needed = vox_offset + data_bytes;
    if compressed {
        let ceiling = file_size.saturating_mul(MAX_DEFLATE_RATIO) + 4096;
        if needed > ceiling {
            return Err(Refusal::Invalid(format!(
                "header claims {needed} bytes of image but a {file_size}-byte gzip file can hold at most {ceiling}"
            )));
        }
    } else if file_size < needed {
        return Err(Refusal::Truncated(format!(
            "header promises {data_bytes} bytes of voxels at offset {vox_offset}, file has {file_size} bytes"
        )));
    }
    Ok(vox_offset)
}

/// Voxel size in mm along each axis, within [`VOXEL_MM`]. The sign of a pixdim is ignored
/// (the orientation lives in qfac and the affine).
fn spacing(header: &NiftiHeader) -> Result<[f32; 3], Refusal> {
    let unit_mm = match header.xyzt_units & 0x07 {
        1 => 1000.0, // metres
        3 => 0.001,  // micrometres
        _ => 1.0,    // millimetres, or unknown (conventionally mm)
    };
    let mut spacing_mm = [0f32; 3];
    for (axis, spacing) in spacing_mm.iter_mut().enumerate() {
        let raw = header.pixdim[axis + 1];
        let mm = raw.abs() * unit_mm;
        if !mm.is_finite() || mm == 0.0 {
            return Err(Refusal::Invalid(format!(
                "pixdim[{}] = {raw} is not a usable voxel size",
                axis + 1
            )));
        }
        if !VOXEL_MM.contains(&mm) {
            return Err(Refusal::Unsupported(format!(
                "pixdim[{}] = {raw} gives a voxel size of {mm} mm, outside the supported {}–{} mm",
                axis + 1,
                VOXEL_MM.start(),
                VOXEL_MM.end()
            )));
        }
        *spacing = mm;
    }
    Ok(spacing_mm)
}

/// Fill as much of `buf` as the stream holds; returns how many bytes were read.
pub(super) fn read_up_to(stream: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Turn a decompression failure into a "truncated/corrupt gzip" error naming the file.
pub(super) fn gzip_or_io(path: &Path, e: std::io::Error) -> VolumeError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => VolumeError::Truncated {
            path: path.to_path_buf(),
            reason: "gzip stream ends early".into(),
        },
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            VolumeError::NotNifti {
                path: path.to_path_buf(),
                reason: format!("corrupt gzip stream: {e}"),
            }
        }
        _ => VolumeError::Io {
            path: PathBuf::from(path),
            source: e,
        },
    }
}

fn describe_bytes(bytes: &[u8]) -> String {
    let lower: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"<") {
        return "starts with '<': looks like HTML or XML".into();
    }
    if lower.starts_with(&[0xff, 0xfe]) || lower.starts_with(&[0xfe, 0xff]) {
        return "starts with a UTF-16 byte-order mark: looks like text".into();
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("first bytes {}", hex.join(" "))
}

fn dtype_name(datatype: NiftiType) -> &'static str {
    match datatype {
        NiftiType::Uint8 => "uint8",
        NiftiType::Int8 => "int8",
        NiftiType::Int16 => "int16",
        NiftiType::Uint16 => "uint16",
        NiftiType::Int32 => "int32",
        NiftiType::Uint32 => "uint32",
        NiftiType::Int64 => "int64",
        NiftiType::Uint64 => "uint64",
        NiftiType::Float32 => "float32",
        NiftiType::Float64 => "float64",
        NiftiType::Float128 => "float128",
        NiftiType::Complex64 => "complex64",
        NiftiType::Complex128 => "complex128",
        NiftiType::Complex256 => "complex256",
        NiftiType::Rgb24 => "rgb24",
        NiftiType::Rgba32 => "rgba32",
    }
}
