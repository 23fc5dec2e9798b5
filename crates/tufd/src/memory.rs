//! What tufd asks of the C allocator (glibc) so that its resident memory follows its work.
//!
//! Two habits of glibc's malloc kept memory that tufd had finished with: it raises its
//! mapping threshold to the size of the first large buffer freed, then serves the next large
//! buffers (a 20 MB targets.json and its next version) from heaps that keep their pages; and
//! a request that makes many small allocations (a batch of thousands of targets, each a few
//! maps and strings) leaves its heaps holding the high-water mark. Elsewhere both calls do
//! nothing.

/// Every allocation of a megabyte or more gets a mapping of its own, returned to the system
/// when freed. Called first thing in `main`, before other threads exist.
pub fn map_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) sets an allocator parameter under the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Returns the free pages of every heap to the system; after a request that allocated a lot
/// in small pieces (it walks the free lists: cheap beside such a request).
pub fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim(3) only releases memory the allocator holds free, under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
