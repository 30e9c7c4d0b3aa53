//! Fitting search matches to the response cap: cut, never drop (the match
//! that crosses the cap comes back with its context cut around its hit), and
//! highlights bounded so that they never outweigh the context they mark.

use rlm::tools::{Highlight, SearchMatch};

use super::ResponseBudget;
use super::response::json_char_cost;

/// What a match's highlights may always weigh, however short its context:
/// a dozen hits of a short context stay listed.
pub(crate) const HIGHLIGHTS_FLOOR: usize = 512;

/// Takes matches in order while they fit `budget`; the first one that does
/// not fit whole is cut to the room left (its context narrowed around its
/// hit) and kept, then the list stops. The first match is always kept, even
/// when the cap leaves no room for more than its hit. Every match's
/// highlights are first bounded ([`bound_highlights`]). Returns the matches
/// and whether anything was cut or left out.
pub(crate) fn take_matches(
    all: Vec<SearchMatch>,
    budget: &mut ResponseBudget,
) -> (Vec<SearchMatch>, bool) {
    let mut cut = false;
    let mut kept = Vec::new();
    for mut m in all {
        cut |= bound_highlights(&mut m);
        if budget.take(&m) {
            kept.push(m);
            continue;
        }
        // The separator's one character is part of the entry's cost.
        let room = budget.left().saturating_sub(1);
        if cut_to(&mut m, room, budget) || kept.is_empty() {
            budget.spend(budget.cost(&m) + 1);
            kept.push(m);
        }
        return (kept, true);
    }
    (kept, cut)
}

/// Keeps the highlights of `m` whose JSON weighs, together, no more than its
/// context's (or [`HIGHLIGHTS_FLOOR`] when that is more): the first hit's
/// always, then the others nearest to it. They stay in document order.
/// Returns whether any was left out.
pub(crate) fn bound_highlights(m: &mut SearchMatch) -> bool {
    // Weighed in characters of JSON: the caps in tokens are the list's to keep.
    let weight = ResponseBudget::of(usize::MAX);
    let allowance = weight.cost(&m.context).max(HIGHLIGHTS_FLOOR);
    let costs: Vec<usize> = m.highlights.iter().map(|h| weight.cost(h) + 1).collect();
    if costs.iter().sum::<usize>() <= allowance {
        return false;
    }
    let primary = (m.highlight_start, m.highlight_end);
    let mut order: Vec<usize> = (0..m.highlights.len()).collect();
    order.sort_by_key(|&i| {
        let h = &m.highlights[i];
        let is_primary = (h.start, h.end) == primary;
        (!is_primary, h.start.abs_diff(primary.0))
    });
    let mut keep = vec![false; m.highlights.len()];
    let mut spent = 0usize;
    for (n, &i) in order.iter().enumerate() {
        if n > 0 && spent + costs[i] > allowance {
            break;
        }
        spent += costs[i];
        keep[i] = true;
    }
    let mut flags = keep.into_iter();
    m.highlights.retain(|_| flags.next().unwrap_or(false));
    true
}

/// Narrows `m`'s context to a window around its first hit so that the whole
/// match costs at most `room` (its span, highlight offsets and highlights
/// follow the window; highlights that would cross the window's edge are
/// dropped, the first hit's is cut with it). Returns whether the match now
/// fits: false when `room` cannot hold even the match without its context,
/// the match is then cut to its hit's first character.
fn cut_to(m: &mut SearchMatch, room: usize, budget: &ResponseBudget) -> bool {
    let context = std::mem::take(&mut m.context);
    let highlights = std::mem::take(&mut m.highlights);
    let fixed = budget.cost(&*m);
    m.context = context;
    m.highlights = highlights;
    // A few characters spare: the span's numbers may gain a digit.
    let Some(free) = room.checked_sub(fixed + 8) else {
        narrow(m, 0, false, budget);
        return false;
    };
    // Half the free room for the context first (highlights never weigh more
    // than it), then the context widened into what those highlights left.
    let mut probe = m.clone();
    narrow(&mut probe, free / 2, true, budget);
    let marks = budget.cost(&probe.highlights);
    narrow(m, free.saturating_sub(marks), true, budget);
    // Highlights the wider window gained may not all fit: the farthest go.
    let allowance = free.saturating_sub(budget.cost(&m.context));
    while budget.cost(&m.highlights) > allowance && m.highlights.len() > 1 {
        let primary = m.highlight_start;
        let far = (0..m.highlights.len())
            .max_by_key(|&i| m.highlights[i].start.abs_diff(primary))
            .unwrap_or(0);
        m.highlights.remove(far);
    }
    budget.cost(&*m) <= room
}

/// Cuts `m`'s context to the widest window around its first hit whose JSON
/// string costs at most `context_room` units of `budget` (at least the
/// hit's first character), and its span, highlight offsets and highlights to
/// match. With `grow` false the window is the hit's first character alone.
fn narrow(m: &mut SearchMatch, context_room: usize, grow: bool, budget: &ResponseBudget) {
    let chars: Vec<char> = m.context.chars().collect();
    let n = chars.len();
    let hs = (m.highlight_start as usize).min(n);
    let he = (m.highlight_end as usize).clamp(hs, n);
    // The window is grown by characters of JSON; a window whose estimated
    // tokens weigh more than its characters is grown again with less room,
    // in proportion, until it fits.
    let mut room = context_room;
    let (a, b) = loop {
        let (a, b) = window(&chars, (hs, he), room, grow);
        let cost = budget.cost(&chars[a..b].iter().collect::<String>());
        if cost <= context_room || b - a <= 1 || room == 0 {
            break (a, b);
        }
        room = (room as u128 * context_room as u128 / cost as u128) as usize;
        room = room.saturating_sub(1);
    };
    let (a64, b64) = (a as u64, b as u64);
    m.context = chars[a..b].iter().collect();
    m.span.start += a64;
    m.span.end = m.span.start + (b64 - a64);
    let primary = (m.highlight_start, m.highlight_end);
    m.highlight_start = hs as u64 - a64;
    m.highlight_end = (he.min(b) as u64) - a64;
    let kept: Vec<Highlight> = std::mem::take(&mut m.highlights)
        .into_iter()
        .filter_map(|h| {
            if (h.start, h.end) == primary {
                let end = h.end.min(b64);
                let term: String = chars[h.start as usize..end as usize].iter().collect();
                return Some(Highlight {
                    start: h.start - a64,
                    end: end - a64,
                    term,
                });
            }
            (h.start >= a64 && h.end <= b64).then(|| Highlight {
                start: h.start - a64,
                end: h.end - a64,
                term: h.term,
            })
        })
        .collect();
    m.highlights = kept;
}

/// The widest window `[a, b)` of `chars` around the hit `[hs, he)` whose
/// characters take at most `room` characters of a JSON string, quotes
/// included: the hit first (at least its first character), then both sides
/// in turn. With `grow` false, the hit's first character alone.
fn window(chars: &[char], (hs, he): (usize, usize), room: usize, grow: bool) -> (usize, usize) {
    let n = chars.len();
    let cost = |c: char| json_char_cost(c);
    let mut left = room.saturating_sub(2);
    let (mut a, mut b) = (hs, hs);
    while b < he && (b == hs || (grow && cost(chars[b]) <= left)) {
        left = left.saturating_sub(cost(chars[b]));
        b += 1;
    }
    if grow && b == he {
        loop {
            let mut moved = false;
            if a > 0 && cost(chars[a - 1]) <= left {
                a -= 1;
                left -= cost(chars[a]);
                moved = true;
            }
            if b < n && cost(chars[b]) <= left {
                left -= cost(chars[b]);
                b += 1;
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use rlm::tools::SpanRef;

    use super::*;

    /// The cost in characters (the tests' budgets have no cap in tokens).
    fn chars<T: serde::Serialize + ?Sized>(v: &T) -> usize {
        ResponseBudget::of(usize::MAX).cost(v)
    }

    fn hit(context: &str, hits: &[(u64, u64)], at: u64) -> SearchMatch {
        let cs: Vec<char> = context.chars().collect();
        let highlights = hits
            .iter()
            .map(|&(s, e)| Highlight {
                start: s,
                end: e,
                term: cs[s as usize..e as usize].iter().collect(),
            })
            .collect();
        SearchMatch {
            doc_id: "00000000-0000-0000-0000-000000000000".into(),
            span: SpanRef {
                doc_id: "00000000-0000-0000-0000-000000000000".into(),
                start: at,
                end: at + cs.len() as u64,
            },
            span_id: None,
            score: 1.0,
            context: context.into(),
            highlight_start: hits[0].0,
            highlight_end: hits[0].1,
            highlights,
            unit: None,
        }
    }

    /// The invariants a client relies on: the context is the span's text,
    /// every highlight lies inside the context and names its text, and the
    /// first hit is one of them.
    fn check(m: &SearchMatch, doc: &str) {
        let cs: Vec<char> = doc.chars().collect();
        let span: String = cs[m.span.start as usize..m.span.end as usize]
            .iter()
            .collect();
        assert_eq!(m.context, span);
        let ctx: Vec<char> = m.context.chars().collect();
        assert!(m.highlight_start < m.highlight_end);
        assert!(m.highlight_end as usize <= ctx.len());
        for h in &m.highlights {
            let t: String = ctx[h.start as usize..h.end as usize].iter().collect();
            assert_eq!(t, h.term);
        }
        assert!(
            m.highlights
                .iter()
                .any(|h| (h.start, h.end) == (m.highlight_start, m.highlight_end))
        );
    }

    #[test]
    fn a_match_too_large_for_the_room_is_cut_around_its_hit() {
        let doc = format!("{}findme1{}", "a".repeat(500), "b".repeat(500));
        let m = hit(&doc[100..900], &[(400, 406)], 100);
        let mut budget = ResponseBudget::of(600);
        let (kept, cut) = take_matches(vec![m], &mut budget);
        assert!(cut);
        assert_eq!(kept.len(), 1);
        let m = &kept[0];
        check(m, &doc);
        assert!(m.context.contains("findme"), "{}", m.context);
        assert!(chars(m) < 600);
        // Both sides of the hit are kept, about evenly.
        let at = m.context.find("findme").unwrap();
        assert!(at > 100 && m.context.len() - at > 100, "{}", m.context);
    }

    #[test]
    fn matches_that_fit_are_kept_whole_and_the_one_that_crosses_is_cut() {
        let doc = "x ".repeat(2000) + "needle " + &"y ".repeat(2000);
        let at = doc.find("needle").unwrap() as u64;
        let m = hit(
            &doc[at as usize - 100..at as usize + 106],
            &[(100, 106)],
            at - 100,
        );
        let whole = chars(&m) + 1;
        let mut budget = ResponseBudget::of(whole * 2 + whole * 4 / 5);
        let (kept, cut) = take_matches(vec![m.clone(), m.clone(), m.clone(), m], &mut budget);
        assert!(cut);
        assert_eq!(kept.len(), 3);
        assert_eq!(chars(&kept[0]) + 1, whole);
        assert_eq!(chars(&kept[1]) + 1, whole);
        assert!(chars(&kept[2]) + 1 < whole);
        check(&kept[2], &doc);
    }

    #[test]
    fn highlights_never_outweigh_their_context() {
        let doc = "ab ".repeat(700);
        let hits: Vec<(u64, u64)> = (0..700).map(|i| (3 * i, 3 * i + 2)).collect();
        let mut m = hit(&doc, &hits, 0);
        m.highlight_start = 900;
        m.highlight_end = 902;
        assert!(bound_highlights(&mut m));
        assert!(chars(&m.highlights) <= chars(&m.context) + 2);
        check(&m, &doc);
        // Nearest the first hit, in document order.
        let starts: Vec<u64> = m.highlights.iter().map(|h| h.start).collect();
        assert!(starts.windows(2).all(|w| w[0] < w[1]));
        assert!(starts.iter().all(|s| s.abs_diff(900) < 600), "{starts:?}");
        // Few highlights are left alone.
        let mut few = hit(&doc, &hits[..3], 0);
        assert!(!bound_highlights(&mut few));
        assert_eq!(few.highlights.len(), 3);
    }

    #[test]
    fn a_hit_longer_than_the_room_is_cut_and_still_marked() {
        let doc = "z".repeat(5000);
        let m = hit(&doc, &[(0, 5000)], 0);
        let mut budget = ResponseBudget::of(1000);
        let (kept, cut) = take_matches(vec![m], &mut budget);
        assert!(cut);
        check(&kept[0], &doc);
        assert!(chars(&kept[0]) <= 1000);
        // The first hit's highlight repeats it: half the room each.
        assert!(kept[0].context.len() > 300, "{}", kept[0].context.len());
    }

    #[test]
    fn the_first_match_comes_back_even_when_no_room_is_left() {
        let doc = "q".repeat(300);
        let m = hit(&doc, &[(10, 20)], 0);
        let mut budget = ResponseBudget::of(10);
        let (kept, cut) = take_matches(vec![m.clone(), m], &mut budget);
        assert!(cut);
        assert_eq!(kept.len(), 1);
        check(&kept[0], &doc);
        assert_eq!(kept[0].context, "q");
    }

    #[test]
    fn escapes_count_as_the_client_receives_them() {
        let doc = "\"\n".repeat(400) + "hit" + &"\t\\".repeat(400);
        let m = hit(&doc, &[(800, 803)], 0);
        let mut budget = ResponseBudget::of(700);
        let (kept, _) = take_matches(vec![m], &mut budget);
        check(&kept[0], &doc);
        assert!(chars(&kept[0]) <= 700);
        assert!(chars(&kept[0]) > 500);
    }
}
