//! Giving the heap that large work freed back to the system: glibc keeps
//! freed memory in its arenas (only the top of the main heap shrinks by
//! itself), so after a big load or index build the daemon's anonymous
//! memory would stay near its peak while it idles. Trimmed after large work,
//! after gc, and once the daemon has idled a few seconds after calls
//! (`server::idle`).

/// Work that moved at least this many bytes through the heap is "large":
/// smaller work frees too little to be worth a trim's walk of the arenas.
pub const LARGE_WORK_BYTES: u64 = 32 << 20;

/// Returns the free memory of every malloc arena to the system (glibc's
/// `malloc_trim(0)`: whole free pages inside the heaps are released too,
/// not only the top) after work of `bytes`; does nothing for small work or
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
