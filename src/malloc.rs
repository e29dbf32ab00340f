//! The C allocator's settings for a batch of volumes.
//!
//! glibc's malloc serves allocations from 128 KiB up with their own `mmap`, returned to the
//! system on `free` — until the first such block is freed: then the threshold rises to that
//! block's size (up to 32 MiB), and every later volume buffer comes from the heap arenas, where
//! freed volumes interleaved with small long-lived records (report entries, spans in flight)
//! fragment the heap and are never given back. Measured on 10 000 tiny subjects: 1.84 GB peak
//! RSS with a live heap of tens of MB. Fixing the threshold keeps volume buffers on `mmap`;
//! their page faults are made fewer by asking for huge pages ([`HugePageAlloc`]).
//!
//! Tried and not kept: mimalloc as the global allocator. It recycles freed volumes instead of
//! having the kernel zero fresh pages, but zeroes them itself for `vec![0; n]`; on 8 heads
//! with 2 threads its CPU time was level with glibc's (within run-to-run noise) at 40–60 %
//! more peak RSS.

/// Fixes glibc's mmap threshold at its default (128 KiB), unless the user set
/// `MALLOC_MMAP_THRESHOLD_` themselves. Call first thing in `main`. A no-op elsewhere.
pub fn keep_large_buffers_on_mmap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

/// Hands free memory inside the heap arenas back to the system (`malloc_trim`). Freed
/// buffers between live records are otherwise kept by glibc for good: a batch of thousands of
/// subjects would grow by their sum. A few ms; call every few dozen subjects. A no-op elsewhere.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The system allocator, with transparent huge pages asked for on volume-sized blocks.
///
/// Every stage allocates its output afresh, and glibc serves those blocks with their own
/// `mmap`: each 4 KiB page then costs a fault on first touch, a fifth of the CPU of a real
/// head. On a block asked for as huge pages (`MADV_HUGEPAGE`, which kernels configured with
/// `transparent_hugepage=madvise` honour) one fault maps 2 MiB.
pub struct HugePageAlloc;

/// Blocks from this size up are advised; smaller ones would gain at most a page or two.
const HUGE_FROM: usize = 4 << 20;

// SAFETY: every call is forwarded to `System` unchanged; `advise` only sets a paging hint on
// whole 2 MiB pages inside the block just returned.
unsafe impl std::alloc::GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        advise(p, new_size);
        p
    }
}

fn advise(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    if size >= HUGE_FROM && !p.is_null() {
        const HUGE: usize = 2 << 20;
        let start = (p as usize).next_multiple_of(HUGE);
        let end = (p as usize + size) / HUGE * HUGE;
        if end > start {
            // SAFETY: [start, end) lies inside the block just allocated; the advice changes
            // how its pages are backed, never their contents. Failure (no THP) is harmless.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, size);
}
