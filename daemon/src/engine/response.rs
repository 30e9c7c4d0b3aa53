//! The response budget: how much of a session's response caps one answer may
//! still spend, and the one way the engine measures what it spends. Every
//! tool that cuts a list or a text to fit goes through [`ResponseBudget`],
//! so a change of unit is a change here only.
//!
//! A response must stay within two caps of its session: characters of JSON
//! (`max_chars_per_response`) and estimated tokens (`max_tokens_per_response`,
//! [`rlm::tokens`]). One scalar unit keeps the arithmetic of the callers: a
//! piece of JSON of `c` characters and `t` estimated tokens costs
//! `max(c, t * chars_cap / tokens_cap)` units, and a response has
//! `chars_cap` units. Units that fit keep both caps (the sum of the costs
//! bounds both sums), at the price of some room when the pieces of one
//! answer are of very different kinds.

use rlm::tokens::TokenCounter;
use serde::Serialize;

use super::SessionRow;

/// Room kept for the fixed part of a response (ids, counts, keys) beside its
/// lists and texts, in characters and in estimated tokens.
pub(crate) const RESPONSE_OVERHEAD: usize = 400;
pub(crate) const RESPONSE_OVERHEAD_TOKENS: u64 = 150;

/// What one response may still spend on its lists and texts, in units of
/// the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseBudget {
    left: usize,
    /// Units a token costs: `chars_cap / tokens_cap`, kept as the fraction.
    chars_cap: u64,
    tokens_cap: u64,
}

impl ResponseBudget {
    /// The room a response of `session` has for its lists and texts: its
    /// caps less the fixed part's.
    pub(crate) fn for_response(session: &SessionRow) -> ResponseBudget {
        let c = &session.config;
        ResponseBudget::with_caps(c.max_chars_per_response, c.max_tokens_per_response)
    }

    /// A budget of a response of these caps (see [`ResponseBudget::for_response`]).
    pub(crate) fn with_caps(chars_cap: u64, tokens_cap: u64) -> ResponseBudget {
        let mut budget = ResponseBudget {
            left: 0,
            chars_cap: chars_cap.max(1),
            tokens_cap: tokens_cap.max(1),
        };
        let overhead = RESPONSE_OVERHEAD.max(budget.units(0, RESPONSE_OVERHEAD_TOKENS));
        budget.left = (chars_cap as usize).saturating_sub(overhead);
        budget
    }

    /// A budget of `left` characters, with no cap in tokens.
    pub(crate) fn of(left: usize) -> ResponseBudget {
        ResponseBudget {
            left,
            chars_cap: 1,
            tokens_cap: u64::MAX,
        }
    }

    /// What is left to spend.
    pub(crate) fn left(&self) -> usize {
        self.left
    }

    /// The units of `chars` characters holding `tokens` estimated tokens.
    pub(crate) fn units(&self, chars: usize, tokens: u64) -> usize {
        let weighed = u128::from(tokens) * u128::from(self.chars_cap);
        let weighed = weighed.div_ceil(u128::from(self.tokens_cap));
        chars.max(usize::try_from(weighed).unwrap_or(usize::MAX))
    }

    /// What `v` costs in a response.
    pub(crate) fn cost<T: Serialize + ?Sized>(&self, v: &T) -> usize {
        let (chars, tokens) = json_measure(v);
        self.units(chars, tokens)
    }

    /// Whether `cost` still fits.
    pub(crate) fn fits(&self, cost: usize) -> bool {
        cost <= self.left
    }

    /// Spends `cost` (at most what is left).
    pub(crate) fn spend(&mut self, cost: usize) {
        self.left = self.left.saturating_sub(cost);
    }

    /// Spends the cost of one list entry (its JSON and a separator) when it
    /// fits, and says whether it did.
    pub(crate) fn take<T: Serialize + ?Sized>(&mut self, item: &T) -> bool {
        let cost = self.cost(item) + 1;
        if !self.fits(cost) {
            return false;
        }
        self.spend(cost);
        true
    }

    /// Keeps list entries while they fit. Returns the kept entries and
    /// whether any was left out.
    pub(crate) fn take_list<T: Serialize>(
        &mut self,
        items: impl IntoIterator<Item = T>,
    ) -> (Vec<T>, bool) {
        let mut kept = Vec::new();
        for item in items {
            if !self.take(&item) {
                return (kept, true);
            }
            kept.push(item);
        }
        (kept, false)
    }

    /// Keeps the entries of one page of a paged list while they fit, so that
    /// paging always advances: when even the first entry does not fit alone
    /// it is cut to the room ([`CutToFit`]) and comes back alone. Returns the
    /// kept entries and whether the page was cut short or an entry was cut.
    pub(crate) fn take_page<T: CutToFit>(
        &mut self,
        items: impl IntoIterator<Item = T>,
    ) -> (Vec<T>, bool) {
        let mut kept = Vec::new();
        for mut item in items {
            if self.take(&item) {
                kept.push(item);
                continue;
            }
            if kept.is_empty() {
                // The separator's one character is part of the entry's cost.
                item.cut_to(self.left.saturating_sub(1), self);
                self.spend(self.cost(&item) + 1);
                kept.push(item);
            }
            return (kept, true);
        }
        (kept, false)
    }

    /// Splits off a share of this budget for one part of a response; give
    /// back what it left with [`ResponseBudget::give_back`].
    pub(crate) fn split_off(&mut self, share: usize) -> ResponseBudget {
        let share = share.min(self.left);
        self.left -= share;
        ResponseBudget {
            left: share,
            ..*self
        }
    }

    /// Returns what a budget split off with [`ResponseBudget::split_off`] did not spend.
    pub(crate) fn give_back(&mut self, part: ResponseBudget) {
        self.left += part.left;
    }

    /// The longest prefix of `text` of at most `max_chars` characters whose
    /// cost inside a JSON string (quotes aside) fits in `room` units (not
    /// spent: the caller spends what it keeps). Returns it and whether it cut.
    pub(crate) fn cut_text<'a>(
        &self,
        text: &'a str,
        max_chars: usize,
        room: usize,
    ) -> (&'a str, bool) {
        let mut json = 0usize;
        let mut tokens = TokenCounter::default();
        for (n, (i, c)) in text.char_indices().enumerate() {
            json += json_char_cost(c);
            push_escaped(&mut tokens, c);
            if n >= max_chars || self.units(json, tokens.total()) > room {
                return (&text[..i], true);
            }
        }
        (text, false)
    }
}

/// An entry of a paged list that can be cut to fit a response when even
/// alone it does not (a document named by a very long source, an artifact
/// with a large provenance), so that a page never comes back empty while
/// entries remain.
pub(crate) trait CutToFit: Serialize {
    /// Shrinks the entry's unbounded parts so that its cost in `budget`'s
    /// units is at most `room` where its bounded parts allow, and marks it cut.
    fn cut_to(&mut self, room: usize, budget: &ResponseBudget);
}

/// Characters and estimated tokens of the JSON serialization of `v` (what
/// a client receives).
pub(crate) fn json_measure<T: Serialize + ?Sized>(v: &T) -> (usize, u64) {
    /// Counts as it is written, a character at a time (one split between
    /// two writes waits in `pending`).
    struct Meter {
        chars: usize,
        tokens: TokenCounter,
        pending: Vec<u8>,
    }
    impl std::io::Write for Meter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            for &b in buf {
                if self.pending.is_empty() && b < 0x80 {
                    self.chars += 1;
                    self.tokens.push(char::from(b));
                    continue;
                }
                self.pending.push(b);
                if let Ok(s) = std::str::from_utf8(&self.pending) {
                    self.chars += 1;
                    self.tokens.push_str(s);
                    self.pending.clear();
                } else if self.pending.len() >= 4 {
                    // Never from serde_json; counted as bytes rather than lost.
                    self.chars += self.pending.len();
                    self.pending
                        .iter()
                        .for_each(|_| self.tokens.push('\u{FFFD}'));
                    self.pending.clear();
                }
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut m = Meter {
        chars: 0,
        tokens: TokenCounter::default(),
        pending: Vec::new(),
    };
    let _ = serde_json::to_writer(&mut m, v);
    (m.chars, m.tokens.total())
}

/// Bytes of the JSON serialization of `v` (what an answer holds until written).
pub(crate) fn json_bytes<T: Serialize + ?Sized>(v: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// Feeds `tokens` the characters `c` takes inside a JSON string.
pub(crate) fn push_escaped(tokens: &mut TokenCounter, c: char) {
    match c {
        '"' | '\\' => {
            tokens.push('\\');
            tokens.push(c);
        }
        '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => {
            tokens.push('\\');
            tokens.push('n');
        }
        c if (c as u32) < 0x20 => tokens.push_str("\\u001f"),
        c => tokens.push(c),
    }
}

/// Characters (code points) of UTF-8 bytes: every byte that does not
/// continue a character starts one.
pub(crate) fn utf8_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

/// Characters `c` takes inside a JSON string.
pub(crate) fn json_char_cost(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_count_the_characters_a_client_receives() {
        // Python: len(json.dumps(["é\n", 1], ensure_ascii=False, separators=(",", ":"))) == 9
        assert_eq!(
            ResponseBudget::of(100).cost(&serde_json::json!(["é\n", 1])),
            9
        );
        assert_eq!(utf8_chars("a€😀".as_bytes()), 3);
    }

    #[test]
    fn costs_count_the_tokens_a_client_receives() {
        let json = serde_json::json!({"text": "漢字漢字 and emoji 😀😀 \"quoted\"\n"});
        let (chars, tokens) = json_measure(&json);
        let text = serde_json::to_string(&json).unwrap();
        assert_eq!(chars, text.chars().count());
        assert_eq!(tokens, rlm::tokens::estimate(&text));
        // 50,000 characters and 8,000 tokens: a token costs 6.25 units.
        let b = ResponseBudget::with_caps(50_000, 8_000);
        assert_eq!(b.units(10, 2), 13);
        assert_eq!(b.units(100, 2), 100);
        assert_eq!(b.cost(&json), b.units(chars, tokens));
        // The fixed part's room: 150 tokens' worth.
        assert_eq!(b.left(), 50_000 - 938);
    }

    #[test]
    fn a_token_cap_cuts_cjk_sooner_than_ascii() {
        let b = ResponseBudget::with_caps(50_000, 8_000);
        let ascii = "word ".repeat(20_000);
        let cjk = "漢".repeat(100_000);
        let (a, _) = b.cut_text(&ascii, usize::MAX, b.left());
        let (c, _) = b.cut_text(&cjk, usize::MAX, b.left());
        let (a, c) = (a.chars().count(), c.chars().count());
        // ASCII words: a token per word and its space (5 characters); CJK: 3
        // tokens a character. Both stop at the cap in tokens.
        assert!((38_000..40_000).contains(&a), "{a}");
        assert!(rlm::tokens::estimate(&ascii[..a]) <= 8_000);
        assert!((2_400..2_700).contains(&c), "{c}");
        assert!(rlm::tokens::estimate(&"漢".repeat(c)) <= 8_000);
    }

    #[test]
    fn a_list_is_cut_where_it_stops_fitting() {
        // Each "abc" costs 5 characters of JSON plus a separator.
        let mut b = ResponseBudget::of(13);
        let (kept, cut) = b.take_list(["abc", "abc", "abc"]);
        assert_eq!((kept.len(), cut, b.left()), (2, true, 1));
    }

    #[test]
    fn a_split_share_comes_back_unspent() {
        let mut b = ResponseBudget::of(100);
        let mut half = b.split_off(50);
        assert!(half.take(&"x"));
        b.give_back(half);
        assert_eq!(b.left(), 96);
    }

    #[test]
    fn text_is_cut_by_its_escaped_size() {
        let b = ResponseBudget::of(100);
        assert_eq!(b.cut_text("a\nb", 10, 3), ("a\n", true));
        assert_eq!(b.cut_text("abc", 2, 100), ("ab", true));
        assert_eq!(b.cut_text("abc", 3, 3), ("abc", false));
    }
}
