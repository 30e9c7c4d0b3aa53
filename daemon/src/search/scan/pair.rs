//! The pair filter: an ASCII needle of two bytes or more searched by its
//! two rarest bytes, 64 candidate starts at a time, with Aho-Corasick as
//! the fallback for texts that make it verify too much.

use std::sync::OnceLock;

/// Case-folded frequency rank of the ASCII bytes (0 = rarest), measured on
/// 98 MB of Python sources, C headers and English prose. A letter has the
/// rank of both its cases together.
const RANK: [u8; 128] = [
    60, 20, 44, 40, 6, 34, 50, 18, 26, 100, 206, 8, 28, 46, 54, 38, 48, 30, 56, 24, 42, 10, 36, 52,
    22, 0, 2, 32, 16, 14, 12, 58, 254, 68, 158, 132, 64, 70, 74, 134, 170, 172, 152, 78, 184, 138,
    160, 174, 146, 136, 128, 120, 92, 126, 86, 84, 90, 122, 144, 124, 88, 130, 110, 72, 76, 222,
    176, 216, 202, 250, 198, 180, 186, 238, 102, 162, 212, 190, 234, 230, 208, 112, 226, 242, 246,
    194, 148, 140, 154, 166, 106, 118, 94, 116, 62, 220, 82, 224, 178, 218, 204, 252, 200, 182,
    188, 240, 104, 164, 214, 192, 236, 232, 210, 114, 228, 244, 248, 196, 150, 142, 156, 168, 108,
    98, 80, 96, 66, 4,
];

/// An ASCII needle of at least two bytes, searched with the pair filter.
#[derive(Debug)]
pub(super) struct PairLiteral {
    /// The needle in ASCII lowercase.
    pub(super) lower: Vec<u8>,
    /// Needle offsets of the rarest and the second rarest byte.
    i1: usize,
    i2: usize,
    #[cfg(target_arch = "x86_64")]
    avx2: bool,
    /// Linear-time fallback for texts that make the filter verify too much.
    pub(super) fallback: OnceLock<Option<aho_corasick::AhoCorasick>>,
}

impl PairLiteral {
    pub(super) fn new(needle: &[u8]) -> PairLiteral {
        debug_assert!(needle.len() >= 2 && needle.is_ascii());
        let lower = needle.to_ascii_lowercase();
        let mut order: Vec<usize> = (0..lower.len()).collect();
        order.sort_by_key(|&i| (RANK[usize::from(lower[i] & 0x7f)], i));
        PairLiteral {
            i1: order[0],
            i2: order[1],
            lower,
            #[cfg(target_arch = "x86_64")]
            avx2: std::arch::is_x86_feature_detected!("avx2"),
            fallback: OnceLock::new(),
        }
    }

    /// How many bytes of the needle match the text at `s` (ASCII case
    /// folded); the needle matches there if that is its length.
    #[inline]
    fn matching_len(&self, hay: &[u8], s: usize) -> usize {
        let cand = &hay[s..s + self.lower.len()];
        if cand.eq_ignore_ascii_case(&self.lower) {
            self.lower.len()
        } else {
            cand.iter()
                .zip(&self.lower)
                .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
                .count()
        }
    }

    /// The first block of 64 candidate starts at or after `s` where the two
    /// rare bytes both fit, as (block start, bit mask of the fitting
    /// starts); `Err(s)` with the first start not tested when fewer than 64
    /// starts remain before `end` (the number of possible starts).
    fn next_block(&self, hay: &[u8], s: usize, end: usize) -> Result<(usize, u64), usize> {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is true only if the CPU was detected to have
            // AVX2, the one requirement of `next_block_avx2`.
            return unsafe { next_block_avx2(self, hay, s, end) };
        }
        next_block_generic(self, hay, s, end)
    }

    fn fallback(&self) -> Option<&aho_corasick::AhoCorasick> {
        self.fallback
            .get_or_init(|| {
                aho_corasick::AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                    .build([&self.lower])
                    .ok()
            })
            .as_ref()
    }
}

/// [`next_block_generic`] compiled for AVX2 (32-byte vectors).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn next_block_avx2(
    lit: &PairLiteral,
    hay: &[u8],
    s: usize,
    end: usize,
) -> Result<(usize, u64), usize> {
    next_block_generic(lit, hay, s, end)
}

#[inline(always)]
fn next_block_generic(
    lit: &PairLiteral,
    hay: &[u8],
    mut s: usize,
    end: usize,
) -> Result<(usize, u64), usize> {
    let (i1, i2) = (lit.i1, lit.i2);
    let (v1, v2) = (lit.lower[i1], lit.lower[i2]);
    // `b | 0x20 == v` is "b is v in either case" for a lowercase letter v;
    // other bytes compare as they are.
    let m1 = if v1.is_ascii_lowercase() { 0x20 } else { 0 };
    let m2 = if v2.is_ascii_lowercase() { 0x20 } else { 0 };
    while s + 64 <= end {
        // In bounds: s + 63 < end = len - needle_len + 1 and i1, i2 < needle_len.
        let a: &[u8; 64] = hay[s + i1..s + i1 + 64].try_into().unwrap_or(&[0; 64]);
        let b: &[u8; 64] = hay[s + i2..s + i2 + 64].try_into().unwrap_or(&[0; 64]);
        let mut flags = [0u8; 64];
        for j in 0..64 {
            flags[j] = u8::from((a[j] | m1) == v1) & u8::from((b[j] | m2) == v2);
        }
        if flags.iter().fold(0, |x, &f| x | f) != 0 {
            let mut bits = 0u64;
            for (k, w) in flags.chunks_exact(8).enumerate() {
                let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
                // Eight 0/1 bytes to eight bits, byte i to bit i.
                bits |= (w.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
            }
            return Ok((s, bits));
        }
        s += 64;
    }
    Err(s)
}

/// Successive non-overlapping matches of a [`PairLiteral`].
pub(super) struct PairIter<'t> {
    lit: &'t PairLiteral,
    hay: &'t [u8],
    /// Number of possible starts (`len - needle_len + 1`, or 0).
    end: usize,
    /// Next candidate start not yet put in a block.
    next: usize,
    /// Candidates left in the current block: bit j is start `base + j`.
    base: usize,
    bits: u64,
    /// No match may start before this (the end of the last one).
    min: usize,
    /// Bytes compared so far verifying candidates, against `budget`.
    work: usize,
    budget: usize,
    /// Set once verifying cost too much: the rest comes from Aho-Corasick.
    fallback: Option<aho_corasick::FindIter<'t, 't>>,
}

impl<'t> PairIter<'t> {
    pub(super) fn new(lit: &'t PairLiteral, hay: &'t [u8]) -> PairIter<'t> {
        PairIter {
            lit,
            hay,
            end: (hay.len() + 1).saturating_sub(lit.lower.len()),
            next: 0,
            base: 0,
            bits: 0,
            min: 0,
            work: 0,
            // Verifying may compare up to ~4 bytes per text byte before the
            // search switches to Aho-Corasick, which keeps the worst case
            // linear (say needle `aaa…a` in text `aaa…ab aaa…ab`).
            budget: hay.len().saturating_mul(4).saturating_add(4096),
            fallback: None,
        }
    }
}

impl Iterator for PairIter<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        if let Some(it) = &mut self.fallback {
            return it.next().map(|m| (m.start(), m.end()));
        }
        let lit = self.lit;
        let n = lit.lower.len();
        loop {
            while self.bits != 0 {
                let c = self.base + self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                if c < self.min {
                    continue;
                }
                let m = lit.matching_len(self.hay, c);
                if m == n {
                    self.min = c + n;
                    return Some((c, c + n));
                }
                self.work += m + 1;
                if self.work > self.budget
                    && let Some(ac) = lit.fallback()
                {
                    // Nothing at or after `min` was reported yet, and
                    // nothing before it may be: resume there.
                    let input = aho_corasick::Input::new(self.hay).range(self.min..);
                    let mut it = ac.find_iter(input);
                    let first = it.next().map(|m| (m.start(), m.end()));
                    self.fallback = Some(it);
                    return first;
                }
            }
            if self.next >= self.end {
                return None;
            }
            match lit.next_block(self.hay, self.next, self.end) {
                Ok((base, bits)) => {
                    self.base = base;
                    self.bits = bits;
                    self.next = base + 64;
                }
                Err(s) => {
                    // Fewer than 64 starts left: test them one by one.
                    let (i1, i2) = (lit.i1, lit.i2);
                    let (v1, v2) = (lit.lower[i1], lit.lower[i2]);
                    let mut bits = 0u64;
                    for c in s..self.end {
                        let fits = self.hay[c + i1].eq_ignore_ascii_case(&v1)
                            && self.hay[c + i2].eq_ignore_ascii_case(&v2);
                        bits |= u64::from(fits) << (c - s);
                    }
                    self.base = s;
                    self.bits = bits;
                    self.next = self.end;
                }
            }
        }
    }
}
