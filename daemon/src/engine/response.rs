//! The response budget: how much of a session's response cap one answer may
//! still spend, and the one way the engine measures what it spends. Every
//! tool that cuts a list or a text to fit goes through [`ResponseBudget`],
//! so a change of unit (characters today) is a change here only.

use serde::Serialize;

use super::SessionRow;

/// Room kept for the fixed part of a response (ids, counts, keys) beside its
/// lists and texts.
pub(crate) const RESPONSE_OVERHEAD: usize = 400;

/// What one response may still spend on its lists and texts, in characters
/// of its JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseBudget {
    left: usize,
}

impl ResponseBudget {
    /// The room a response of `session` has for its lists and texts: the
    /// session's `max_chars_per_response` less [`RESPONSE_OVERHEAD`].
    pub(crate) fn for_response(session: &SessionRow) -> ResponseBudget {
        ResponseBudget::of(
            (session.config.max_chars_per_response as usize).saturating_sub(RESPONSE_OVERHEAD),
        )
    }

    /// A budget of `left` units.
    pub(crate) fn of(left: usize) -> ResponseBudget {
        ResponseBudget { left }
    }

    /// What is left to spend.
    pub(crate) fn left(&self) -> usize {
        self.left
    }

    /// What `v` costs in a response.
    pub(crate) fn cost<T: Serialize + ?Sized>(v: &T) -> usize {
        json_chars(v)
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
        let cost = Self::cost(item) + 1;
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
                item.cut_to(self.left.saturating_sub(1));
                self.spend(Self::cost(&item) + 1);
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
        ResponseBudget::of(share)
    }

    /// Returns what a budget split off with [`ResponseBudget::split_off`] did not spend.
    pub(crate) fn give_back(&mut self, part: ResponseBudget) {
        self.left += part.left;
    }

    /// The longest prefix of `text` of at most `max_chars` characters whose
    /// cost inside a JSON string fits in `room` (not spent: the caller
    /// spends what it keeps). Returns it and whether it cut.
    pub(crate) fn cut_text(text: &str, max_chars: usize, room: usize) -> (&str, bool) {
        let mut json = 0usize;
        for (n, (i, c)) in text.char_indices().enumerate() {
            json += json_char_cost(c);
            if n >= max_chars || json > room {
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
    /// Shrinks the entry's unbounded parts so that its cost is at most `room`
    /// where its bounded parts allow, and marks it cut.
    fn cut_to(&mut self, room: usize);
}

/// Characters of the JSON serialization of `v` (what a client receives).
fn json_chars<T: Serialize + ?Sized>(v: &T) -> usize {
    json_measure(v, utf8_chars)
}

/// Bytes of the JSON serialization of `v` (what an answer holds until written).
pub(crate) fn json_bytes<T: Serialize + ?Sized>(v: &T) -> usize {
    json_measure(v, <[u8]>::len)
}

/// Serializes `v` without keeping it, adding up `count` of each piece.
fn json_measure<T: Serialize + ?Sized>(v: &T, count: fn(&[u8]) -> usize) -> usize {
    struct Counter(usize, fn(&[u8]) -> usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += (self.1)(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0, count);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
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
        assert_eq!(ResponseBudget::cost(&serde_json::json!(["é\n", 1])), 9);
        assert_eq!(utf8_chars("a€😀".as_bytes()), 3);
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
        assert_eq!(ResponseBudget::cut_text("a\nb", 10, 3), ("a\n", true));
        assert_eq!(ResponseBudget::cut_text("abc", 2, 100), ("ab", true));
        assert_eq!(ResponseBudget::cut_text("abc", 3, 3), ("abc", false));
    }
}
