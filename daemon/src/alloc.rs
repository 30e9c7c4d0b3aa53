//! The daemon's heap: glibc's malloc set up so that freed memory goes back
//! to the system (`tune`, at start), and trimmed after large work, after
//! gc, and once the daemon has idled a few seconds after calls
//! (`server::idle`). Without it glibc keeps freed memory in its arenas
//! (only the top of the main heap shrinks by itself), so after a big load
//! or index build the daemon's anonymous memory would stay near its peak
//! while it idles. And what the process holds, as the kernel counts it
//! (`process_memory`).

/// Work that moved at least this many bytes through the heap is "large":
/// smaller work frees too little to be worth a trim's walk of the arenas.
pub const LARGE_WORK_BYTES: u64 = 32 << 20;

/// malloc arenas, at most. glibc gives every thread that allocates an arena
/// of its own and keeps freed memory in it: after an index build on several
/// threads the daemon held 88 MB at its peak, 67 MB with one arena
/// (measured with the stdlib corpus). Two keep most of that saving without
/// making the loader and indexer threads queue on one lock.
pub const MALLOC_ARENAS: i32 = 2;

/// Free bytes at the top of a malloc heap past which a `free` gives them
/// back (glibc's default, held fixed: see [`tune`]).
pub const TRIM_THRESHOLD_BYTES: i32 = 128 << 10;

/// Allocations of this size or more get a mapping of their own, unmapped
/// when freed (a load's file buffers, a build's large vectors).
pub const MMAP_THRESHOLD_BYTES: i32 = 4 << 20;

/// Sets glibc's malloc up for a long-running daemon; call it first in
/// `main`, so that every arena is made under these settings. Two arenas
/// ([`MALLOC_ARENAS`]), and fixed thresholds ([`TRIM_THRESHOLD_BYTES`],
/// [`MMAP_THRESHOLD_BYTES`]). glibc raises both each time it unmaps a
/// large block (up to 32 and 64 MB): blocks up to that size are then cut
/// from the arenas' heaps, the small ones allocated after them scatter over
/// the pages they freed, which no trim gives back, and a heap's free top is
/// kept until it passes twice that. After the 850 MB corpus and a few loads
/// of 100 MB the idle daemon held 26-40 MB, 14-28 MB of it in the second
/// arena's heap, while the whole heap had 5 MB in use; with the thresholds
/// fixed, 16 MB (docs/BENCHMARKS.md, "The heap's top given back"). A user
/// who sets any `glibc.malloc.` tunable in `GLIBC_TUNABLES` keeps glibc as
/// set there: nothing is changed.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_set = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc."));
        if user_set {
            return;
        }
        // SAFETY: mallopt only sets malloc's parameters, under malloc's own
        // lock; it may be called at any time from any thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        }
    }
}

/// Returns the free memory of every malloc arena to the system (glibc's
/// `malloc_trim(0)`: the whole free pages inside every heap; with the
/// thresholds of [`tune`], a heap's free top goes back at `free` already)
/// after work of `bytes`; does nothing for small work or
/// with another allocator. `RLM_NO_MALLOC_TRIM` (any value) turns it off,
/// to measure without (`bench/memory.py`).
pub fn after_large_work(bytes: u64) {
    if bytes >= LARGE_WORK_BYTES {
        trim();
    }
}

/// Returns the free memory of every malloc arena to the system now (after
/// gc, and when the daemon has been idle a while), unless
/// `RLM_NO_MALLOC_TRIM` is set.
pub fn trim() {
    if std::env::var_os("RLM_NO_MALLOC_TRIM").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases free chunks, under the
    // arenas' own locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This process's resident memory, `RssAnon` and `RssFile` apart (`rlm
/// status`); None off Linux, or when `/proc` is not mounted.
pub fn process_memory() -> Option<rlm::protocol::ProcessMemory> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    rlm::protocol::ProcessMemory::from_proc_status(&status)
}
