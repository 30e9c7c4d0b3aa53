//! The daemon's heap gives back what work freed as it frees it: with
//! malloc set up as `rlmd` sets it (`alloc::tune`), memory freed in a
//! thread's arena after a large block came and went leaves the process's
//! `RssAnon` at once, without waiting for the trim of an idle daemon (which
//! never comes while clients keep calling). A test binary of its own:
//! malloc's settings are the whole process's.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

/// The process's anonymous resident memory, in bytes.
fn rss_anon() -> usize {
    let memory = rlmd::alloc::process_memory().expect("/proc/self/status");
    usize::try_from(memory.rss_anon_bytes).expect("a size")
}

const MIB: usize = 1 << 20;

/// A build's pattern, in a thread of its own (an arena that is not the
/// main heap): a large buffer allocated and freed (glibc, left to itself,
/// then raises its mmap threshold to its size and its trim threshold to
/// twice that), then a buffer of half its size, then many small blocks,
/// each freed in turn. After each free the process holds about what it
/// held before.
#[test]
fn memory_a_thread_frees_after_a_large_block_goes_back_at_once() {
    rlmd::alloc::tune();
    let report = std::thread::spawn(|| {
        let before = rss_anon();
        let large = vec![1u8; 16 * MIB];
        assert_eq!(large[16 * MIB - 1], 1);
        drop(large);
        let half = vec![2u8; 8 * MIB];
        assert_eq!(half[8 * MIB - 1], 2);
        drop(half);
        let after_half = rss_anon();
        let small: Vec<Vec<u8>> = (0..24 * MIB / (16 << 10))
            .map(|i| vec![i as u8 | 1; 16 << 10])
            .collect();
        let peak = rss_anon();
        assert!(small.iter().all(|b| b[0] != 0));
        drop(small);
        [before, after_half, peak, rss_anon()]
    })
    .join()
    .expect("the allocating thread");
    let [before, after_half, peak, after_small] = report.map(|b| b / MIB);
    assert!(
        peak >= before + 20,
        "the small blocks should have taken 24 MiB: before {before} MiB, peak {peak} MiB"
    );
    assert!(
        after_half <= before + 2 && after_small <= before + 2,
        "RssAnon should fall back as blocks are freed: before {before} MiB, after the \
         8 MiB buffer {after_half} MiB, peak {peak} MiB, after the small blocks {after_small} MiB"
    );
}
