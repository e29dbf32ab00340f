//! A bounded fuzz of the NIfTI reader (header checks and voxel reading), run by `cargo test`
//! with a fixed seed: valid files in both byte orders, `.nii` and one- and two-member
//! `.nii.gz`, mutated field by field, by byte flips, truncations and appended garbage, in the
//! raw bytes and in the gzip stream and trailers.
//!
//! Every case must end without a panic, without any single allocation beyond what the file can
//! hold (a few times its decompressed length, plus the reader's 1 MiB buffer), and either with
//! an error naming the file or with a volume that matches its header.
//!
//! `NEURO_BATCH_FUZZ_CASES` sets the number of cases (default 30 000, about a second here, a few seconds on a busy 2-core machine);
//! `NEURO_BATCH_FUZZ_SEED` the seed.

mod common;

use common::{RawNifti, gzip};
use neuro_batch::volume::{inspect, read_volume};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The system allocator, remembering the largest single allocation.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// The reader's buffered input, and slack for the decoder's tables and error strings.
const FIXED_ALLOWANCE: usize = 2 << 20;

/// Header fields the reader depends on: (offset, width in bytes, is a float).
const FIELDS: [(usize, usize, bool); 24] = [
    (0, 4, false),   // sizeof_hdr
    (40, 2, false),  // dim[0]
    (42, 2, false),  // dim[1]
    (44, 2, false),  // dim[2]
    (46, 2, false),  // dim[3]
    (48, 2, false),  // dim[4]
    (50, 2, false),  // dim[5]
    (56, 2, false),  // dim[7]
    (70, 2, false),  // datatype
    (72, 2, false),  // bitpix
    (76, 4, true),   // pixdim[0] (qfac)
    (80, 4, true),   // pixdim[1]
    (84, 4, true),   // pixdim[2]
    (88, 4, true),   // pixdim[3]
    (108, 4, true),  // vox_offset
    (112, 4, true),  // scl_slope
    (116, 4, true),  // scl_inter
    (123, 1, false), // xyzt_units
    (252, 2, false), // qform_code
    (254, 2, false), // sform_code
    (256, 4, true),  // quatern_b
    (280, 4, true),  // srow_x[0]
    (324, 4, true),  // srow_z[3]
    (344, 4, false), // magic
];

/// Valid files: (bytes, gzip-compressed, big-endian).
fn base_files(rng: &mut StdRng) -> Vec<(Vec<u8>, bool, bool)> {
    let mut files = Vec::new();
    for (datatype, bitpix, size) in [(4i16, 16i16, 2usize), (16, 32, 4), (2, 8, 1), (64, 64, 8)] {
        for big_endian in [false, true] {
            let dims = [rng.random_range(2..12), rng.random_range(2..12), 5];
            let voxels = dims.iter().map(|&d| d as usize).product::<usize>();
            let body: Vec<u8> = (0..voxels * size).map(|_| rng.random()).collect();
            let mut raw = RawNifti::new(&dims, datatype, bitpix);
            raw.big_endian = big_endian;
            files.push((raw.bytes(&body), false, big_endian));
        }
    }
    let plain = files.clone();
    for (bytes, _, big_endian) in &plain {
        files.push((gzip(bytes), true, *big_endian));
        // Two gzip members, split inside the header or the voxels.
        let cut = rng.random_range(1..bytes.len());
        let mut two = gzip(&bytes[..cut]);
        two.extend(gzip(&bytes[cut..]));
        files.push((two, true, *big_endian));
    }
    files
}

fn set_field(bytes: &mut [u8], rng: &mut StdRng, big_endian: bool) {
    let (offset, width, float) = FIELDS[rng.random_range(0..FIELDS.len())];
    if bytes.len() < offset + width {
        return;
    }
    let value: Vec<u8> = match (width, float) {
        (4, true) => {
            let v: f32 = *[
                0.0,
                -1.0,
                1e-30,
                1e-6,
                1e30,
                f32::NAN,
                f32::INFINITY,
                348.0,
                351.0,
                352.0,
                1e9,
                rng.random_range(-1e4..1e4),
            ]
            .get(rng.random_range(0..12))
            .unwrap();
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
            .to_vec()
        }
        (4, false) => {
            let v: i32 = *[0, -1, 348, 540, i32::MAX, i32::MIN, rng.random()]
                .get(rng.random_range(0..7))
                .unwrap();
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
            .to_vec()
        }
        (2, _) => {
            let v: i16 = *[
                0,
                -1,
                1,
                3,
                4,
                7,
                8,
                255,
                8192,
                8193,
                i16::MAX,
                i16::MIN,
                rng.random(),
            ]
            .get(rng.random_range(0..13))
            .unwrap();
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
            .to_vec()
        }
        _ => vec![rng.random()],
    };
    bytes[offset..offset + width].copy_from_slice(&value);
}

/// One mutation of `bytes`: a header field, byte flips, a cut, or appended garbage.
fn mutate(bytes: &mut Vec<u8>, rng: &mut StdRng, big_endian: bool) {
    match rng.random_range(0..10) {
        0..=4 => set_field(bytes, rng, big_endian),
        5..=6 => {
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] ^= rng.random_range(1..=255u8);
            }
        }
        7..=8 => {
            let keep = rng.random_range(0..bytes.len());
            bytes.truncate(keep);
        }
        _ => bytes.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
    }
}

/// What a decoder yields from `bytes` before it stops (end or error).
fn decompressed_len(bytes: &[u8]) -> usize {
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    let mut buf = [0u8; 1 << 16];
    let mut total = 0;
    while let Ok(n) = decoder.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n;
    }
    total
}

#[test]
fn mutated_nifti_files_never_panic_or_over_allocate() {
    let cases: usize = std::env::var("NEURO_BATCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let seed: u64 = std::env::var("NEURO_BATCH_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x006e_6966_7469);
    let mut rng = StdRng::seed_from_u64(seed);
    let bases = base_files(&mut rng);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (mut ok, mut refused) = (0usize, 0usize);
    for case in 0..cases {
        let (base, compressed, big_endian) = &bases[rng.random_range(0..bases.len())];
        let big_endian = *big_endian;
        let mut bytes = if *compressed && rng.random_bool(0.5) {
            // Mutate the image, then compress it: the reader sees a sound gzip stream.
            let mut raw = Vec::new();
            flate2::read::MultiGzDecoder::new(&base[..])
                .read_to_end(&mut raw)
                .unwrap();
            mutate(&mut raw, &mut rng, big_endian);
            gzip(&raw)
        } else {
            // Mutate the bytes on disk: for gzip, the stream, its headers and trailers.
            let mut b = base.clone();
            for _ in 0..rng.random_range(1..3) {
                if !b.is_empty() {
                    mutate(&mut b, &mut rng, big_endian);
                }
            }
            b
        };
        if bytes.is_empty() {
            bytes.push(0);
        }
        let named_gz = if rng.random_bool(0.9) {
            *compressed
        } else {
            !*compressed
        };
        let path = dir.path().join(format!(
            "case{case}_T1w{}",
            if named_gz { ".nii.gz" } else { ".nii" }
        ));
        std::fs::write(&path, &bytes).unwrap();
        let holds = if *compressed {
            decompressed_len(&bytes).max(bytes.len())
        } else {
            bytes.len()
        };

        LARGEST.store(0, Ordering::Relaxed);
        let result = std::panic::catch_unwind(|| (inspect(&path).is_ok(), read_volume(&path)));
        let largest = LARGEST.load(Ordering::Relaxed);
        let (inspected, read) = result.unwrap_or_else(|_| {
            panic!(
                "case {case} (seed {seed}) panicked; bytes kept at {}",
                path.display()
            )
        });
        let ceiling = FIXED_ALLOWANCE + 8 * holds;
        assert!(
            largest <= ceiling,
            "case {case}: an allocation of {largest} bytes for a file holding {holds}"
        );
        match read {
            Ok((volume, info)) => {
                ok += 1;
                assert!(inspected, "case {case}: read but its header was refused");
                let [x, y, z] = info.dims;
                assert_eq!(volume.data.dim(), (x, y, z), "case {case}");
                assert!(volume.data.iter().all(|v| v.is_finite()), "case {case}");
                assert!(volume.spacing_mm.iter().all(|s| *s > 0.0), "case {case}");
            }
            Err(e) => {
                refused += 1;
                let message = e.to_string();
                assert!(
                    message.contains(&format!("case{case}_T1w")),
                    "case {case}: the error names the file: {message}"
                );
                assert!(!message.contains('\n'), "case {case}: one line: {message}");
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
    eprintln!(
        "fuzz: {cases} cases (seed {seed}): {ok} read, {refused} refused, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        ok > cases / 20,
        "most mutations are refused, but not all: {ok} read"
    );
}
