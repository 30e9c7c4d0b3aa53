//! Reads of a pack that was truncated while mapped: the SIGBUS they raise is
//! caught here, so a damaged pack fails the calls that read it instead of
//! killing the daemon.
//!
//! Every pack mapping is registered ([`watch`]) in a lock-free table of
//! address ranges. The SIGBUS handler (unix only; Windows refuses to
//! truncate a mapped file) looks the fault address up there: inside a
//! registered range, it maps an anonymous zero page over the faulting page
//! (`MAP_FIXED`), marks that mapping damaged, bumps [`faults`] and returns,
//! so the read goes on and sees zeros; anywhere else it puts the previous
//! disposition back (the default, or the stack-overflow handler of Rust's
//! runtime) and lets the fault happen again under it, so a real crash stays
//! a crash. The zeros are never served: the code that read text during a
//! call sees the counter move (`Engine::call`, the index builder, a
//! chunking before its commit) and fails with `corrupt_text`.
//!
//! The table is a chain of fixed arrays of slots, never freed; each slot is
//! a seqlock over (start, length), so the handler, which can take no lock,
//! never believes a range that is half written. A slot is unregistered
//! before its mapping is unmapped (`Watch` is dropped first), so an address
//! the table names is always one of ours.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};

/// Faults caught inside pack mappings since the process started.
static FAULTS: AtomicU64 = AtomicU64::new(0);

/// How many faults inside pack mappings were caught so far. A call that
/// sees it move while it ran may have read zeros where text was.
pub fn faults() -> u64 {
    FAULTS.load(Ordering::SeqCst)
}

const SLOTS_PER_CHUNK: usize = 256;

struct Slot {
    /// Odd while the range is being written.
    seq: AtomicUsize,
    /// First byte of the mapping; 0 when the slot is free.
    start: AtomicUsize,
    len: AtomicUsize,
    damaged: AtomicBool,
    /// Owned by a `Watch`.
    claimed: AtomicBool,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            seq: AtomicUsize::new(0),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            damaged: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
        }
    }

    /// Writes the range (the slot's owner only).
    fn set(&self, start: usize, len: usize) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.start.store(start, Ordering::Relaxed);
        self.len.store(len, Ordering::Relaxed);
        self.damaged.store(false, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// Whether `addr` lies in the range, read consistently (no lock, no
    /// wait: a slot being written is not the one a reader faulted in, since
    /// a mapping is registered before anything reads it).
    // Only the Unix handler (and the tests) look ranges up.
    #[cfg_attr(not(unix), allow(dead_code))]
    fn holds(&self, addr: usize) -> bool {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & 1 == 1 {
            return false;
        }
        let start = self.start.load(Ordering::Relaxed);
        let len = self.len.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let s2 = self.seq.load(Ordering::Relaxed);
        s1 == s2 && start != 0 && addr >= start && addr - start < len
    }
}

struct Chunk {
    slots: [Slot; SLOTS_PER_CHUNK],
    next: AtomicPtr<Chunk>,
}

static FIRST: Chunk = Chunk {
    slots: [const { Slot::new() }; SLOTS_PER_CHUNK],
    next: AtomicPtr::new(std::ptr::null_mut()),
};

/// The chunks of the table, in order (read by the handler: no allocation).
fn chunks() -> impl Iterator<Item = &'static Chunk> {
    let mut next: Option<&'static Chunk> = Some(&FIRST);
    std::iter::from_fn(move || {
        let c = next?;
        let p = c.next.load(Ordering::Acquire);
        // SAFETY: chunks are leaked boxes, never freed.
        next = (!p.is_null()).then(|| unsafe { &*p });
        Some(c)
    })
}

/// A free slot, claimed; a new chunk is chained when every slot is taken.
fn claim() -> &'static Slot {
    loop {
        let mut last = &FIRST;
        for chunk in chunks() {
            for slot in &chunk.slots {
                if slot
                    .claimed
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return slot;
                }
            }
            last = chunk;
        }
        let fresh: &'static Chunk = Box::leak(Box::new(Chunk {
            slots: [const { Slot::new() }; SLOTS_PER_CHUNK],
            next: AtomicPtr::new(std::ptr::null_mut()),
        }));
        let p = fresh as *const Chunk as *mut Chunk;
        if last
            .next
            .compare_exchange(std::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another thread chained one first; ours stays unused (tiny, rare).
        }
    }
}

/// The registration of one mapping; dropping it unregisters the range, so it
/// must be dropped before the mapping is unmapped.
pub struct Watch {
    slot: Option<&'static Slot>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("damaged", &self.damaged())
            .finish()
    }
}

/// Registers the mapping `[ptr, ptr + len)`: a read there that faults
/// reads zeros and marks it damaged instead of killing the process.
pub fn watch(ptr: *const u8, len: usize) -> Watch {
    if len == 0 || !install() {
        return Watch { slot: None };
    }
    let slot = claim();
    slot.set(ptr as usize, len);
    Watch { slot: Some(slot) }
}

impl Watch {
    /// Whether a read of this mapping faulted (its file was cut short).
    pub fn damaged(&self) -> bool {
        self.slot.is_some_and(|s| s.damaged.load(Ordering::SeqCst))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            slot.set(0, 0);
            slot.claimed.store(false, Ordering::Release);
        }
    }
}

/// The slot whose range holds `addr`.
#[cfg_attr(not(unix), allow(dead_code))]
fn find(addr: usize) -> Option<&'static Slot> {
    chunks()
        .flat_map(|c| c.slots.iter())
        .find(|s| s.holds(addr))
}

/// Installs the handler once; false where there is none (Windows).
fn install() -> bool {
    #[cfg(unix)]
    {
        static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ONCE.get_or_init(unix::install)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

#[cfg(unix)]
mod unix {
    use std::sync::OnceLock;
    use std::sync::atomic::Ordering;

    use super::{FAULTS, find};

    /// The disposition before ours, put back for a fault that is not ours.
    static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
    static PAGE: OnceLock<usize> = OnceLock::new();

    pub(super) fn install() -> bool {
        // SAFETY: plain libc calls on zeroed, then filled, structures.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if page <= 0 {
                return false;
            }
            let _ = PAGE.set(page as usize);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                return false;
            }
            let _ = PREVIOUS.set(old);
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigbus as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) == 0
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    unsafe fn fault_addr(info: *const libc::siginfo_t) -> usize {
        // SAFETY: a SIGBUS siginfo carries the fault address.
        unsafe { (*info).si_addr() as usize }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    unsafe fn fault_addr(info: *const libc::siginfo_t) -> usize {
        // SAFETY: a SIGBUS siginfo carries the fault address.
        unsafe { (*info).si_addr as usize }
    }

    /// Only async-signal-safe work: atomics, `mmap`, `sigaction`, `raise`.
    extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let (code, addr) = unsafe { ((*info).si_code, fault_addr(info)) };
        // si_code > 0: raised by the kernel for a fault (not sent by kill).
        if code > 0
            && let (Some(slot), Some(&page)) = (find(addr), PAGE.get())
        {
            let base = addr & !(page - 1);
            // SAFETY: the page lies inside a live mapping of ours (the table
            // names only those); a private zero page replaces what the file
            // no longer backs, and the mapping's munmap removes it too.
            let p = unsafe {
                libc::mmap(
                    base as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                slot.damaged.store(true, Ordering::SeqCst);
                FAULTS.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        // Not ours: the previous disposition takes it.
        // SAFETY: sigaction and raise are async-signal-safe.
        unsafe {
            match PREVIOUS.get() {
                Some(old) => libc::sigaction(sig, old, std::ptr::null_mut()),
                None => libc::signal(sig, libc::SIG_DFL) as libc::c_int,
            };
            if code <= 0 {
                // Sent by a process: the fault does not happen again by itself.
                libc::raise(sig);
            }
        }
        // A fault happens again when the instruction runs again on return.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_holds_its_range_until_dropped() {
        let buf = [0u8; 100];
        let w = watch(buf.as_ptr(), buf.len());
        let p = buf.as_ptr() as usize;
        if cfg!(unix) {
            assert!(find(p).is_some());
            assert!(find(p + 99).is_some());
            assert!(!w.damaged());
        }
        drop(w);
        assert!(find(p).is_none());
    }

    #[test]
    fn the_table_grows_past_one_chunk() {
        let bufs: Vec<Vec<u8>> = (0..SLOTS_PER_CHUNK + 10).map(|_| vec![1u8; 8]).collect();
        let watches: Vec<Watch> = bufs.iter().map(|b| watch(b.as_ptr(), b.len())).collect();
        if cfg!(unix) {
            for b in &bufs {
                assert!(find(b.as_ptr() as usize).is_some());
            }
        }
        drop(watches);
        for b in &bufs {
            assert!(find(b.as_ptr() as usize).is_none());
        }
    }
}
