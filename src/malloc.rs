//! The C allocator's settings for a batch of volumes.
//!
//! glibc's malloc serves allocations from 128 KiB up with their own `mmap`, returned to the
//! system on `free` — until the first such block is freed: then the threshold rises to that
//! block's size (up to 32 MiB), and every later volume buffer comes from the heap arenas, where
//! freed volumes interleaved with small long-lived records (report entries, spans in flight)
//! fragment the heap and are never given back. Measured on 10 000 tiny subjects: 1.84 GB peak
//! RSS with a live heap of tens of MB. Fixing the threshold keeps volume buffers on `mmap`.
//! [`HugePageAlloc`] then makes their page faults fewer (huge pages) and rarer (a bounded set of
//! freed blocks is reused): on 8 real heads with 2 threads, CPU time fell by a tenth (9.2 s →
//! 8.3 s, medians of 5) for 20 % more peak RSS (279 → 347 MB).
//!
//! Tried and not kept: mimalloc as the global allocator. It recycles freed volumes instead of
//! having the kernel zero fresh pages, but zeroes them itself for `vec![0; n]`; on 8 heads
//! with 2 threads its CPU time was level with glibc's (within run-to-run noise) at 40–60 %
//! more peak RSS.

/// glibc's mmap threshold as fixed here: from this size up, blocks get their own `mmap` (and
/// are kept for reuse by [`HugePageAlloc`]). Below glibc's default of 128 KiB so that even
/// small volumes' buffers (a 24×28×24 image is 64 KiB) stay out of the heap arenas, which then
/// hold only records: on 10 000 such subjects peak RSS fell from 175 to 95 MB.
const MMAP_FROM: usize = 32 << 10;

/// Fixes glibc's mmap threshold at [`MMAP_FROM`], unless the user set
/// `MALLOC_MMAP_THRESHOLD_` themselves. Call first thing in `main`. A no-op elsewhere.
pub fn keep_large_buffers_on_mmap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_FROM as libc::c_int);
        }
    }
}

/// Hands free memory back to the system: the blocks kept for reuse ([`HugePageAlloc`]), and
/// free space inside the heap arenas (`malloc_trim`). Freed buffers between live records are
/// otherwise kept by glibc for good: a batch of thousands of subjects would grow by their sum.
/// A few ms; call every few dozen subjects.
pub fn release_free_memory() {
    release_recycled();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The system allocator, with transparent huge pages asked for on volume-sized blocks and
/// freed volume-sized blocks kept for the next allocation of about the same size.
///
/// Every stage allocates its output afresh, and glibc serves those blocks with their own
/// `mmap`: each page then costs a fault, and the kernel zeroing it, on first touch, and an
/// unmap with its TLB flushes on free: a fifth of the CPU of a real head. On a block asked
/// for as huge pages (`MADV_HUGEPAGE`, which kernels configured with
/// `transparent_hugepage=madvise` honour) one fault maps 2 MiB; a block taken from
/// [`Recycled`] costs no fault at all, and a `memset` where zeroes were asked for. A fresh
/// block that will be used whole is mapped in one call rather than a fault per page
/// ([`populate`]).
pub struct HugePageAlloc;

/// Blocks from this size up are advised; smaller ones would gain at most a page or two.
const HUGE_FROM: usize = 4 << 20;

/// Freed blocks from this size up, those glibc maps one by one, are kept for reuse.
const RECYCLE_FROM: usize = MMAP_FROM;

/// At most this many bytes of freed blocks are kept: a few volumes' worth, so a batch's
/// memory still follows the files in flight. Enough for a head's `f32` volume (28 MB at
/// 181×217×181) to outlast the masks freed after it: on 8 heads with 2 threads, the kernel's
/// page zeroing fell from 8.6 % of the CPU samples at 64 MiB to 2.6 %, for 7 % more peak RSS
/// (232 → 248 MB).
const RECYCLE_BYTES: usize = 128 << 20;

/// At most this many freed blocks are kept.
const RECYCLE_SLOTS: usize = 32;

/// Freed large blocks, oldest first, waiting for an allocation they fit.
struct Recycled {
    /// `(address, usable size)`; the first `len` are in use.
    slots: [(usize, usize); RECYCLE_SLOTS],
    len: usize,
    bytes: usize,
}

static RECYCLED: std::sync::Mutex<Recycled> = std::sync::Mutex::new(Recycled {
    slots: [(0, 0); RECYCLE_SLOTS],
    len: 0,
    bytes: 0,
});

impl Recycled {
    /// The smallest kept block of `size` bytes up to a quarter more, taken out.
    fn take(&mut self, size: usize) -> Option<*mut u8> {
        let fits = |&(_, have): &(usize, usize)| have >= size && have - size <= size / 4;
        let (i, _) = self.slots[..self.len]
            .iter()
            .enumerate()
            .filter(|(_, slot)| fits(slot))
            .min_by_key(|(_, (_, have))| *have)?;
        let (ptr, have) = self.slots[i];
        self.slots.copy_within(i + 1..self.len, i);
        self.len -= 1;
        self.bytes -= have;
        Some(ptr as *mut u8)
    }

    /// Keeps `(ptr, size)`; returns the oldest blocks that no longer fit in the bounds, to be
    /// freed by the caller (outside the lock).
    fn keep(&mut self, ptr: *mut u8, size: usize) -> Evicted {
        let mut evicted = Evicted::default();
        if size > RECYCLE_BYTES {
            evicted.push(ptr);
            return evicted;
        }
        while self.len > 0 && (self.len == RECYCLE_SLOTS || self.bytes + size > RECYCLE_BYTES) {
            let (old, have) = self.slots[0];
            self.slots.copy_within(1..self.len, 0);
            self.len -= 1;
            self.bytes -= have;
            evicted.push(old as *mut u8);
        }
        self.slots[self.len] = (ptr as usize, size);
        self.len += 1;
        self.bytes += size;
        evicted
    }

    /// Takes out every kept block, to be freed by the caller.
    fn drain(&mut self) -> Evicted {
        let mut evicted = Evicted::default();
        for &(ptr, _) in &self.slots[..self.len] {
            evicted.push(ptr as *mut u8);
        }
        self.len = 0;
        self.bytes = 0;
        evicted
    }
}

/// Blocks to hand back to the system, collected under the lock and freed after it.
struct Evicted {
    blocks: [usize; RECYCLE_SLOTS + 1],
    len: usize,
}

impl Default for Evicted {
    fn default() -> Self {
        Self {
            blocks: [0; RECYCLE_SLOTS + 1],
            len: 0,
        }
    }
}

impl Evicted {
    fn push(&mut self, ptr: *mut u8) {
        self.blocks[self.len] = ptr as usize;
        self.len += 1;
    }

    fn free(self) {
        for &ptr in &self.blocks[..self.len] {
            // SAFETY: every kept block came from `System` with an alignment `System` serves
            // through malloc (see `recyclable`), so `free` is how it goes back; the layout's
            // size and alignment are not used for those.
            unsafe {
                std::alloc::GlobalAlloc::dealloc(
                    &std::alloc::System,
                    ptr as *mut u8,
                    std::alloc::Layout::from_size_align_unchecked(RECYCLE_FROM, 1),
                )
            };
        }
    }
}

/// Whether blocks of `layout` are kept and reused: large ones with malloc's own alignment.
fn recyclable(layout: std::alloc::Layout) -> bool {
    layout.size() >= RECYCLE_FROM && layout.align() <= 16
}

fn recycled(layout: std::alloc::Layout) -> Option<*mut u8> {
    if !recyclable(layout) {
        return None;
    }
    RECYCLED.lock().ok()?.take(layout.size())
}

/// Frees the blocks kept for reuse.
fn release_recycled() {
    let evicted = match RECYCLED.lock() {
        Ok(mut kept) => kept.drain(),
        Err(_) => return,
    };
    evicted.free();
}

// SAFETY: every call is forwarded to `System`, or served by a block `System` allocated with a
// layout at least as large and freed by the program since (see `Recycled`); `advise` only
// sets a paging hint on whole 2 MiB pages inside the block just returned.
unsafe impl std::alloc::GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if let Some(p) = recycled(layout) {
            return p;
        }
        let p = unsafe { std::alloc::System.alloc(layout) };
        advise(p, layout.size());
        if layout.size() >= HUGE_FROM {
            populate(p, layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if let Some(p) = recycled(layout) {
            // SAFETY: the block holds at least `layout.size()` bytes.
            unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
            return p;
        }
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        advise(p, layout.size());
        if layout.size() >= RECYCLE_FROM {
            populate(p, layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if recyclable(layout)
            && let Ok(mut kept) = RECYCLED.lock()
        {
            let evicted = kept.keep(ptr, layout.size());
            drop(kept);
            evicted.free();
            return;
        }
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        advise(p, new_size);
        p
    }
}

/// Maps every whole page of a block just allocated, writable and zeroed, in one call
/// (`MADV_POPULATE_WRITE`, Linux 5.14; on older kernels the call fails and pages come one
/// fault at a time, as without it).
///
/// Without it a fresh block's pages are mapped on first touch, one fault each; and a page
/// first *read* (a zeroed histogram's `+=`, a flood fill's "already filled?") is mapped to the
/// kernel's shared zero page, so the write that follows faults again and must flush that
/// mapping from the TLB of every CPU running the process: an inter-processor interrupt, which
/// on a VM is an exit. On 8 real heads with 2 threads: 131 000 page faults and 16 600 TLB
/// shootdowns per run without, 19 000 and 500 with it; CPU time 6.73 → 6.19 s and wall time
/// 3.77 → 3.52 s (medians of 10 interleaved runs).
///
/// Only for blocks that will be used whole: zeroed ones (a `vec![0; n]` is all in use) and
/// volume-sized ones; a smaller uninitialised block may be a reservation never filled.
fn populate(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    if !p.is_null() {
        const PAGE: usize = 4096;
        let start = (p as usize).next_multiple_of(PAGE);
        let end = (p as usize + size) / PAGE * PAGE;
        if end > start {
            // SAFETY: [start, end) lies inside the block just allocated; populating maps its
            // pages writable without changing their contents. Failure (an old kernel) leaves
            // them to be faulted in on first touch.
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    end - start,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, size);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Recycled {
        Recycled {
            slots: [(0, 0); RECYCLE_SLOTS],
            len: 0,
            bytes: 0,
        }
    }

    /// Addresses are never dereferenced by `Recycled`, so made-up ones serve.
    fn block(n: usize) -> *mut u8 {
        (n * 4096) as *mut u8
    }

    fn freed(evicted: &Evicted) -> Vec<usize> {
        evicted.blocks[..evicted.len].to_vec()
    }

    #[test]
    fn takes_the_smallest_block_that_fits_within_a_quarter() {
        let mut kept = empty();
        let mb = 1 << 20;
        assert!(freed(&kept.keep(block(1), 8 * mb)).is_empty());
        assert!(freed(&kept.keep(block(2), 5 * mb)).is_empty());
        assert!(freed(&kept.keep(block(3), 4 * mb)).is_empty());
        assert_eq!(kept.take(6 * mb), None, "8 MB is more than a quarter over");
        assert_eq!(kept.take(4 * mb + 1), Some(block(2)));
        assert_eq!(kept.take(4 * mb), Some(block(3)));
        assert_eq!(kept.take(7 * mb), Some(block(1)));
        assert_eq!((kept.len, kept.bytes), (0, 0));
        assert_eq!(kept.take(mb), None);
    }

    /// Whether each page of `[p, p + len)` is mapped, as `mincore` reports it.
    #[cfg(target_os = "linux")]
    fn resident_pages(p: *mut u8, len: usize) -> Vec<bool> {
        let mut vec = vec![0u8; len / 4096];
        // SAFETY: `p` is page-aligned and `[p, p + len)` lies inside one mapping.
        let rc = unsafe { libc::mincore(p.cast(), len, vec.as_mut_ptr()) };
        assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
        vec.iter().map(|&b| b & 1 == 1).collect()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn zeroed_blocks_are_mapped_whole_and_zero() {
        use std::alloc::{GlobalAlloc, Layout};
        // Kernels before 5.14 refuse the advice; then nothing is populated and nothing to test.
        let probe = vec![0u8; 2 * 4096];
        let page = probe
            .as_ptr()
            .wrapping_add(probe.as_ptr().align_offset(4096));
        // SAFETY: one page inside `probe`; populating does not change its contents.
        let supported =
            unsafe { libc::madvise(page as *mut _, 4096, libc::MADV_POPULATE_WRITE) } == 0;
        if !supported {
            eprintln!("SKIPPED: this kernel does not support MADV_POPULATE_WRITE");
            return;
        }
        // Over the recycling bound: never served from `Recycled`, always fresh from mmap.
        let layout = Layout::from_size_align(RECYCLE_BYTES + 4096, 16).unwrap();
        // SAFETY: the layout is non-zero; the block is freed below with the same layout.
        let p = unsafe { HugePageAlloc.alloc_zeroed(layout) };
        assert!(!p.is_null());
        let start = p.wrapping_add(p.align_offset(4096));
        let whole = (layout.size() - (start as usize - p as usize)) / 4096 * 4096;
        let resident = resident_pages(start, whole);
        let missing = resident.iter().filter(|&&r| !r).count();
        // SAFETY: `p` holds `layout.size()` initialised (zeroed) bytes.
        let bytes = unsafe { std::slice::from_raw_parts(p, layout.size()) };
        assert!(bytes.iter().all(|&b| b == 0));
        unsafe { HugePageAlloc.dealloc(p, layout) };
        assert_eq!(
            missing,
            0,
            "{missing} of {} pages not mapped",
            resident.len()
        );
    }

    #[test]
    fn evicts_the_oldest_beyond_its_bounds() {
        let mut kept = empty();
        let third = RECYCLE_BYTES / 3;
        for i in 1..=3 {
            assert!(freed(&kept.keep(block(i), third)).is_empty());
        }
        assert_eq!(freed(&kept.keep(block(4), third)), vec![block(1) as usize]);
        assert_eq!(
            freed(&kept.keep(block(5), RECYCLE_BYTES + 1)),
            vec![block(5) as usize],
            "a block over the bound is freed at once, the others kept"
        );
        assert_eq!((kept.len, kept.bytes), (3, 3 * third));
        assert_eq!(freed(&kept.drain()).len(), 3);

        for i in 0..RECYCLE_SLOTS {
            assert!(freed(&kept.keep(block(10 + i), RECYCLE_FROM)).is_empty());
        }
        assert_eq!(
            freed(&kept.keep(block(99), RECYCLE_FROM)),
            vec![block(10) as usize]
        );
        assert_eq!(kept.len, RECYCLE_SLOTS);
        assert_eq!(freed(&kept.drain()).len(), RECYCLE_SLOTS);
        assert_eq!((kept.len, kept.bytes), (0, 0));
    }
}
