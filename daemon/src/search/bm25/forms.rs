//! A query word's forms scored as one term: the words of the index that share its English
//! stem ([`word_forms`]), and the query that scores them together as a stemmed index would
//! score their stem ([`FormsQuery`]), while the index itself keeps every word exact.

use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::Postings;
use tantivy::postings::SegmentPostings;
use tantivy::query::{Bm25Weight, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

use super::index::IndexError;
use super::view::IndexView;
use crate::search::analyzer;

/// Query terms shorter than this (bytes) keep their one form (a word of two letters may
/// still be another word's stem: `ids` stems to `id`).
pub const MIN_FORM_TERM_BYTES: usize = 2;

/// Whether a term is a word that has an English stem: ASCII lower-case letters, digits
/// and `_`, with a letter (what the tokenizer would stem: `stem_in_place`).
fn stemmable(term: &[u8]) -> bool {
    term.iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        && term.iter().any(u8::is_ascii_lowercase)
}

/// Postings of a word's forms read to count the passages holding any of them, at most
/// (their document frequencies summed): past this the sum stands for the count.
pub const MAX_UNION_POSTINGS: u64 = 65_536;

/// Forms of one query word kept besides the word itself, at most.
pub const MAX_FORMS: usize = 16;

/// `term`'s English Snowball stem and the words of `view`'s index, other than `term`, that
/// have it, in term order, when `term` is a word of ASCII lower-case letters, digits and
/// `_` (with a letter) of [`MIN_FORM_TERM_BYTES`] or more, the index does not stem and the
/// view has forms on (else None). Each segment's term dictionary is read only where forms
/// may be ([`form_place`]: the stem and an English ending), for at most [`MAX_FORMS`]
/// forms; a form with another ending, and a few irregular ones (`dying`, whose stem is
/// `die`), are not found.
pub(crate) fn word_forms(
    view: &IndexView,
    stemmer: &frostem::Stemmer,
    term: &str,
) -> Result<Option<(String, Vec<String>)>, IndexError> {
    if view.opts.stemming
        || !view.word_forms
        || term.len() < MIN_FORM_TERM_BYTES
        || !stemmable(term.as_bytes())
    {
        return Ok(None);
    }
    let stem = analyzer::english_stem(stemmer, term);
    if stem.len() < 2 || !stemmable(stem.as_bytes()) {
        return Ok(Some((stem, Vec::new())));
    }
    let mut forms: Vec<String> = Vec::new();
    let consider = |word: &[u8], forms: &mut Vec<String>| {
        if word == term.as_bytes() || !stemmable(word) {
            return;
        }
        let Ok(word) = std::str::from_utf8(word) else {
            return;
        };
        if !forms.iter().any(|f| f == word) && analyzer::english_stem(stemmer, word) == stem {
            forms.push(word.to_owned());
        }
    };
    let place = form_place(&stem);
    'segments: for reader in view.searcher.segment_readers() {
        if !view.may_hold(reader.segment_id()) {
            continue;
        }
        let inverted = reader.inverted_index(view.text)?;
        // The bounds let the walk go straight to the head's node, and end when it leaves it.
        let mut walk = inverted.terms().search(&place).ge(&place.head);
        if let Some(past) = place.past_head() {
            walk = walk.lt(past);
        }
        let mut stream = walk.into_stream()?;
        while stream.advance() {
            consider(stream.key(), &mut forms);
            if forms.len() >= MAX_FORMS {
                break 'segments;
            }
        }
    }
    forms.sort_unstable();
    Ok(Some((stem, forms)))
}

/// A query word with its forms in a view: what [`word_group`] found.
#[derive(Debug)]
pub(crate) struct WordGroup {
    /// The word's English stem (None: the word is not stemmed, see [`word_forms`]).
    pub stem: Option<String>,
    /// The word itself first (its document frequency may be 0), then its other forms
    /// that the view's passages hold, each with its document frequency in the view.
    pub forms: Vec<(String, u64)>,
    /// The view's passages holding any of the forms (a stemmed index's count of the
    /// stem), at most its passage count; past [`MAX_UNION_POSTINGS`], the sum of the
    /// forms' counts, where a passage holding two forms counts twice.
    pub doc_freq: u64,
}

/// Word groups a view keeps (the words its searches asked for), at most; past this they
/// start over.
pub const MAX_CACHED_GROUPS: usize = 4096;

/// `term` with its forms in `view` and their statistics, kept by the view for its next
/// searches (a view is one snapshot of the index: what it holds does not change).
pub(crate) fn word_group(
    view: &IndexView,
    stemmer: &frostem::Stemmer,
    term: &str,
) -> Result<std::sync::Arc<WordGroup>, IndexError> {
    if let Some(group) = view.cached_group(term) {
        return Ok(group);
    }
    let (stem, other) = word_forms(view, stemmer, term)?.unzip();
    let own = view.doc_freq(&Term::from_field_text(view.text, term))?;
    let mut forms = vec![(term.to_owned(), own)];
    for form in other.unwrap_or_default() {
        let df = view.doc_freq(&Term::from_field_text(view.text, &form))?;
        if df > 0 {
            forms.push((form, df));
        }
    }
    // The passages holding any form, counted by reading the forms' postings, unless
    // they are many: then the sum of the forms' counts (a passage holding two forms
    // counts twice), which the dictionaries give.
    let sum: u64 = forms.iter().map(|f| f.1).sum();
    let held = forms.iter().filter(|f| f.1 > 0).count();
    let doc_freq = if held > 1 && sum <= MAX_UNION_POSTINGS {
        let terms: Vec<Term> = forms
            .iter()
            .filter(|f| f.1 > 0)
            .map(|f| Term::from_field_text(view.text, &f.0))
            .collect();
        view.union_doc_freq(&terms)?
    } else {
        sum
    };
    let group = std::sync::Arc::new(WordGroup {
        stem,
        forms,
        doc_freq: doc_freq.min(view.total_docs()),
    });
    view.keep_group(term, group.clone());
    Ok(group)
}

/// The endings a form may have past its stem (or, for a stem Snowball rewrote at its end,
/// past the stem but its last letter, see [`form_place`]): English inflections and
/// derivations, as Snowball's English stemmer removes them, alone and stacked.
#[rustfmt::skip]
pub const SUFFIXES: &[&str] = &[
    "", "s", "es", "ed", "ing", "ings", "er", "ers", "est", "ly", "ies", "ied", "ier", "iest",
    "ily", "iness", "ion", "ions", "ional", "ionally", "ation", "ations", "ational", "ative",
    "atively", "ator", "ators", "ate", "ates", "ated", "ating", "ment", "ments", "mental",
    "ness", "nesses", "ity", "ities", "ility", "ilities", "ive", "ives", "ively", "iveness",
    "ize", "izes", "ized", "izing", "izer", "izers", "ization", "izations", "ise", "ises",
    "ised", "ising", "isation", "al", "als", "ally", "alize", "alized", "alization", "ality",
    "able", "ably", "ability", "ible", "ibly", "ence", "ences", "ency", "ent", "ents", "ently",
    "ance", "ances", "ancy", "ant", "ants", "antly", "ism", "isms", "ist", "ists", "ful",
    "fully", "fulness", "less", "lessly", "lessness", "ous", "ously", "ousness", "ic", "ics",
    "ical", "ically", "icity", "y", "edly", "ingly", "e", "ish", "ication", "ications", "icate",
    "icated", "icates", "icating", "icative", "alism", "alisms", "alist", "alists", "alities",
    "abilities", "ibilities", "ationally", "encies", "ancies",
];

/// Where the forms of English stem `stem` (two or more bytes) are looked for: the stem
/// then one of [`SUFFIXES`], maybe after an `e` (`create` for `creat`) or its last letter
/// doubled (`running` for `run`), or sharing the stem's last `e` (`hoped` for `hope`);
/// and where Snowball rewrote the word's end, the stem but its last letter then the word's
/// own ending: a `y` that became `i` (`happy` for `happi`,
/// `copying` for `copi`), an `e` that went before an ending in `i` (`hoping` for `hope`),
/// `-bility` that became `-ble` (`possibility` for `possibl`). A word found there is a form
/// only if its stem is `stem`.
fn form_place(stem: &str) -> Place {
    let (head, last) = stem.split_at(stem.len() - 1);
    let last = last.as_bytes()[0];
    // The endings depend only on the stem's last letter (and, for an `l`, on a `b` before
    // it): each kind's trie is made once for the process.
    let after_b = last == b'l' && head.ends_with('b');
    let endings = ENDINGS[usize::from(last) * 2 + usize::from(after_b)]
        .get_or_init(|| Endings::new(&stem_endings(last, after_b)));
    Place {
        head: head.as_bytes().to_vec(),
        endings,
    }
}

/// The endings of [`form_place`] past a stem but its last letter `last` (`after_b`: the
/// stem ends in `bl`).
fn stem_endings(last: u8, after_b: bool) -> Vec<String> {
    let last = char::from(last);
    let mut endings: Vec<String> = Vec::new();
    for s in SUFFIXES {
        endings.push(format!("{last}{s}"));
        endings.push(format!("{last}e{s}"));
        if !matches!(last, 'a' | 'e' | 'i' | 'o' | 'u' | 'y') {
            endings.push(format!("{last}{last}{s}"));
        }
        // A stem that ends in `e` meets the endings that start with one.
        if let Some(rest) = s.strip_prefix('e').filter(|_| last == 'e') {
            endings.push(format!("{last}{rest}"));
        }
        match last {
            'i' => endings.push(format!("y{s}")),
            'e' if s.starts_with('i') => endings.push((*s).to_owned()),
            'l' if after_b && s.starts_with('i') => endings.push((*s).to_owned()),
            _ => {}
        }
    }
    endings
}

/// The endings' tries of [`form_place`], by the stem's last byte (times two, plus one
/// after a `b`), each made on first use: building one (some 450 endings) cost more than
/// walking a segment's dictionary with it.
static ENDINGS: [std::sync::OnceLock<Endings>; 512] = [const { std::sync::OnceLock::new() }; 512];

/// A set of endings as a trie: node 0 is the root; node `n`'s children are
/// `edges[spans[n].0..spans[n].1]` (by byte), and `ends[n]` says whether an ending ends there.
struct Endings {
    edges: Vec<(u8, u32)>,
    spans: Vec<(u32, u32)>,
    ends: Vec<bool>,
}

impl Endings {
    fn new(endings: &[String]) -> Endings {
        let mut nodes: Vec<(Vec<(u8, u32)>, bool)> = vec![(Vec::new(), false)];
        for ending in endings {
            let mut at = 0usize;
            for &b in ending.as_bytes() {
                let found = nodes[at].0.iter().find(|(c, _)| *c == b).map(|&(_, n)| n);
                at = match found {
                    Some(n) => n as usize,
                    None => {
                        nodes.push((Vec::new(), false));
                        let n = nodes.len() - 1;
                        nodes[at].0.push((b, n as u32));
                        n
                    }
                };
            }
            nodes[at].1 = true;
        }
        let mut flat = Endings {
            edges: Vec::new(),
            spans: Vec::with_capacity(nodes.len()),
            ends: Vec::with_capacity(nodes.len()),
        };
        for (children, end) in nodes {
            let from = flat.edges.len() as u32;
            flat.edges.extend(children);
            flat.spans.push((from, flat.edges.len() as u32));
            flat.ends.push(end);
        }
        flat
    }

    /// The node past `node` by `byte`, if any.
    fn next(&self, node: u32, byte: u8) -> Option<u32> {
        let (from, to) = self.spans[node as usize];
        self.edges[from as usize..to as usize]
            .iter()
            .find(|(c, _)| *c == byte)
            .map(|&(_, n)| n)
    }
}

/// The words of a term dictionary that are `head` then one of a set of endings: an
/// automaton the dictionary's walk follows, leaving every other branch unread.
pub(crate) struct Place {
    head: Vec<u8>,
    endings: &'static Endings,
}

impl Place {
    /// The first word past those that start with the head: the head with its last byte
    /// one more (None for an empty head, or one ending in byte 255).
    fn past_head(&self) -> Option<Vec<u8>> {
        let mut past = self.head.clone();
        let last = past.last_mut()?;
        *last = last.checked_add(1)?;
        Some(past)
    }
}

/// A walk's state: bytes of the head matched, then the trie node; None once the word
/// cannot match.
type PlaceState = Option<(usize, u32)>;

impl tantivy_fst::Automaton for &Place {
    type State = PlaceState;

    fn start(&self) -> PlaceState {
        Some((0, 0))
    }

    fn is_match(&self, state: &PlaceState) -> bool {
        state.is_some_and(|(n, node)| n == self.head.len() && self.endings.ends[node as usize])
    }

    fn can_match(&self, state: &PlaceState) -> bool {
        state.is_some()
    }

    fn accept(&self, state: &PlaceState, byte: u8) -> PlaceState {
        let (n, node) = (*state)?;
        if let Some(&want) = self.head.get(n) {
            return (byte == want).then_some((n + 1, 0));
        }
        self.endings.next(node, byte).map(|next| (n, next))
    }
}

/// The forms of one query word as one term, scored as BM25 would score their common stem
/// in a stemmed index: a passage's term frequency is the sum of its forms' frequencies, and
/// the document frequency is `doc_freq` ([`WordGroup::doc_freq`]).
#[derive(Debug, Clone)]
pub(crate) struct FormsQuery {
    pub field: Field,
    pub terms: Vec<Term>,
    pub doc_freq: u64,
}

impl Query for FormsQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let bm25 = match enable_scoring {
            EnableScoring::Enabled {
                statistics_provider,
                ..
            } => {
                let docs = statistics_provider.total_num_docs()?;
                let tokens = statistics_provider.total_num_tokens(self.field)?;
                let average = if docs == 0 {
                    0.0
                } else {
                    tokens as Score / docs as Score
                };
                Some(Bm25Weight::for_one_term(
                    self.doc_freq.min(docs),
                    docs,
                    average,
                ))
            }
            EnableScoring::Disabled { .. } => None,
        };
        Ok(Box::new(FormsWeight {
            field: self.field,
            terms: self.terms.clone(),
            bm25,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for term in &self.terms {
            visitor(term, false);
        }
    }
}

struct FormsWeight {
    field: Field,
    terms: Vec<Term>,
    /// None: scoring is off (every match scores 1).
    bm25: Option<Bm25Weight>,
}

impl Weight for FormsWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let inverted = reader.inverted_index(self.field)?;
        let mut postings = Vec::with_capacity(self.terms.len());
        for term in &self.terms {
            if let Some(p) = inverted.read_postings(term, IndexRecordOption::WithFreqs)? {
                postings.push(p);
            }
        }
        let mut scorer = FormsScorer {
            postings,
            fieldnorms: reader.get_fieldnorms_reader(self.field)?,
            bm25: self.bm25.as_ref().map(|w| w.boost_by(boost)),
            doc: TERMINATED,
        };
        scorer.doc = scorer.least();
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} holds none of the forms"
            )));
        }
        Ok(Explanation::new(
            "the forms of a word, as one stem",
            scorer.score(),
        ))
    }
}

/// The union of the forms' postings.
struct FormsScorer {
    postings: Vec<SegmentPostings>,
    fieldnorms: FieldNormReader,
    bm25: Option<Bm25Weight>,
    doc: DocId,
}

impl FormsScorer {
    /// The least document any form is on.
    fn least(&self) -> DocId {
        self.postings
            .iter()
            .map(DocSet::doc)
            .min()
            .unwrap_or(TERMINATED)
    }
}

impl DocSet for FormsScorer {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        for p in &mut self.postings {
            if p.doc() == self.doc {
                p.advance();
            }
        }
        self.doc = self.least();
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        for p in &mut self.postings {
            if p.doc() < target {
                p.seek(target);
            }
        }
        self.doc = self.least();
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.postings
            .iter()
            .map(DocSet::size_hint)
            .fold(0u32, u32::saturating_add)
    }
}

impl Scorer for FormsScorer {
    fn score(&mut self) -> Score {
        let Some(bm25) = &self.bm25 else {
            return 1.0;
        };
        let tf: u32 = self
            .postings
            .iter()
            .filter(|p| p.doc() == self.doc)
            .map(|p| p.term_freq())
            .sum();
        bm25.score(self.fieldnorms.fieldnorm_id(self.doc), tf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::analyzer::AnalyzerOptions;
    use crate::search::bm25::{PassageHit, PassageIndex, Statistics};

    use crate::search::bm25::test_index as build;

    const TEXTS: &[&str] = &[
        "the client retries the request after a delay",
        "a retry policy decides how long to wait",
        "every failed call is retried three times",
        "retrying forever is a bug",
        "the retriever fetches passages from the store",
        "nothing here mentions the word at all",
        "happy paths and happiness",
        "we were hoping for the best",
        "hope is a plan when the possibility is possible",
        "ids of get_names, one id of get_name",
    ];

    /// Whether `place`'s walk of a term dictionary keeps `word`.
    fn kept(place: &Place, word: &str) -> bool {
        use tantivy_fst::Automaton;
        let mut state = place.start();
        for &b in word.as_bytes() {
            if !place.can_match(&state) {
                return false;
            }
            state = place.accept(&state, b);
        }
        place.is_match(&state)
    }

    fn kept_anywhere(stem: &str, word: &str) -> bool {
        kept(&form_place(stem), word)
    }

    #[test]
    fn forms_are_read_where_the_stem_and_an_ending_are() {
        for (stem, yes) in [
            (
                "retri",
                &["retry", "retries", "retried", "retrying", "retrial"][..],
            ),
            ("happi", &["happy", "happiness", "happily", "happier"][..]),
            ("hope", &["hope", "hoped", "hopes", "hoping", "hopeful"][..]),
            (
                "possibl",
                &["possible", "possibly", "possibility", "possibilities"][..],
            ),
            ("run", &["run", "runs", "running", "runner"][..]),
            (
                "creat",
                &["create", "created", "creating", "creation", "creative"][..],
            ),
            (
                "nation",
                &["nation", "national", "nationalization", "nations"][..],
            ),
        ] {
            for w in yes {
                assert!(kept_anywhere(stem, w), "{stem}: {w}");
            }
        }
        // Not the stem and an ending: never read.
        for (stem, no) in [
            (
                "retri",
                &["retriever_", "retry_count", "retry2", "retr", "retrx"][..],
            ),
            ("file", &["filename", "filesystem", "filter", "fil"][..]),
            ("parse", &["parsexml", "parsefromstring"][..]),
        ] {
            for w in no {
                assert!(!kept_anywhere(stem, w), "{stem}: {w}");
            }
        }
    }

    #[test]
    fn a_words_forms_are_the_index_words_of_its_stem() {
        let tmp = tempfile::tempdir().unwrap();
        let index = build(tmp.path(), AnalyzerOptions::DEFAULT, TEXTS);
        let mut view = index.view(None, Statistics::View).unwrap();
        assert_eq!(
            word_forms(&view, &analyzer::english_stemmer(), "retry").unwrap(),
            None
        );
        view.word_forms = true;
        let stemmer = analyzer::english_stemmer();
        let forms = |t: &str| {
            word_forms(&view, &stemmer, t)
                .unwrap()
                .map(|(_, f)| f)
                .unwrap_or_default()
        };
        // Not the word itself, not `retriever` (its stem is `retriev`).
        assert_eq!(forms("retry"), ["retried", "retries", "retrying"]);
        assert_eq!(forms("retrying"), ["retried", "retries", "retry"]);
        // A stem ending in `i` from a `y`: the scan starts before it.
        assert_eq!(forms("happy"), ["happiness"]);
        assert_eq!(forms("happiness"), ["happy"]);
        assert_eq!(
            word_forms(&view, &stemmer, "retries").unwrap().unwrap().0,
            "retri"
        );
        // Forms that begin before the stem's last letter.
        assert_eq!(forms("hope"), ["hoping"]);
        assert_eq!(forms("possible"), ["possibility"]);
        assert_eq!(forms("possibility"), ["possible"]);
        // Words of no form, too short, not ASCII letters: nothing.
        assert!(forms("delay").is_empty());
        assert_eq!(word_forms(&view, &stemmer, "a").unwrap(), None);
        assert_eq!(word_forms(&view, &stemmer, "42").unwrap(), None);
        // Two letters, digits and `_` have stems too.
        assert_eq!(forms("id"), ["ids"]);
        assert_eq!(forms("get_name"), ["get_names"]);
        assert!(forms("a").is_empty());
        assert!(forms("re").is_empty());
        assert!(forms("retry2").is_empty());
        assert!(forms("rétry").is_empty());
    }

    /// The walk reads a dictionary only from the stem's head to the first word past it,
    /// and with the endings of the stem's last letter made once: it finds what a read of
    /// the whole dictionary finds, for every word, beside words that sort just before,
    /// just past and among the head's.
    #[test]
    fn the_walk_finds_every_form_the_whole_dictionary_holds() {
        let mut texts: Vec<&str> = TEXTS.to_vec();
        texts.extend([
            "retq retr retrz rets retz hopd hopf hopz happz happj happiest",
            "cable cables enable enabled enabling ables abl stable stability stables",
            "parse parsed parser parsers parsing parses parsexml pars parsf",
            "zzz_run runs running runner run1 run_ ru rum",
        ]);
        let tmp = tempfile::tempdir().unwrap();
        let index = build(tmp.path(), AnalyzerOptions::DEFAULT, &texts);
        let mut view = index.view(None, Statistics::View).unwrap();
        view.word_forms = true;
        let stemmer = analyzer::english_stemmer();
        let mut dictionary: Vec<String> = Vec::new();
        for reader in view.searcher.segment_readers() {
            let inverted = reader.inverted_index(view.text).unwrap();
            let mut stream = inverted.terms().stream().unwrap();
            while stream.advance() {
                dictionary.push(String::from_utf8(stream.key().to_vec()).unwrap());
            }
        }
        dictionary.sort_unstable();
        dictionary.dedup();
        let mut checked = 0;
        for word in &dictionary {
            let Some((stem, found)) = word_forms(&view, &stemmer, word).unwrap() else {
                continue;
            };
            let mut expected: Vec<String> = dictionary
                .iter()
                .filter(|w| *w != word && stemmable(w.as_bytes()))
                .filter(|w| analyzer::english_stem(&stemmer, w) == stem)
                .filter(|w| stem.len() >= 2 && kept_anywhere(&stem, w))
                .cloned()
                .collect();
            expected.truncate(MAX_FORMS);
            assert_eq!(found, expected, "{word} (stem {stem})");
            checked += 1;
        }
        assert!(checked > 60, "{checked} words checked");
    }

    /// The forms score exactly as their stem in an index that stems: the same passages,
    /// the same scores (`happy` and `happiness` share a passage).
    #[test]
    fn forms_score_as_a_stemmed_index_scores_the_stem() {
        let tmp = tempfile::tempdir().unwrap();
        let exact = build(&tmp.path().join("exact"), AnalyzerOptions::DEFAULT, TEXTS);
        let stemming = AnalyzerOptions {
            stemming: true,
            ..AnalyzerOptions::DEFAULT
        };
        let stemmed = build(&tmp.path().join("stemmed"), stemming, TEXTS);
        let ranked = |index: &PassageIndex, q: &str| -> Vec<(u64, f32)> {
            let mut view = index.view(None, Statistics::View).unwrap();
            view.word_forms = true;
            let hits: Vec<PassageHit> = view.search_terms(q, 10, None).unwrap().0;
            let mut ranked: Vec<(u64, f32)> = hits.iter().map(|h| (h.key, h.score)).collect();
            // Equal scores in key order: ties have no order of their own.
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked
        };
        for q in [
            "retry",
            "retries policy",
            "retrying delay",
            "retriever",
            "retry or retries",
            "hoped",
            "happy",
            "possibilities",
            "id",
            "get_names",
        ] {
            let (a, b) = (ranked(&exact, q), ranked(&stemmed, q));
            assert_eq!(a.len(), b.len(), "{q}: {a:?} {b:?}");
            for ((ka, sa), (kb, sb)) in a.iter().zip(&b) {
                assert_eq!(ka, kb, "{q}: {a:?} {b:?}");
                assert!((sa - sb).abs() < 1e-4, "{q}: {a:?} {b:?}");
            }
        }
        // `retry` finds all four passages of its forms, and not the retriever's; with
        // forms off (the default), only its own.
        let keys: Vec<u64> = ranked(&exact, "retry").iter().map(|h| h.0).collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert!(!keys.contains(&4));
        assert_eq!(exact.search("retry", 10, None).unwrap().len(), 1);
        // The search's terms name every form found, for the contexts and highlights,
        // each weighed by the group's idf.
        let mut view = exact.view(None, Statistics::View).unwrap();
        view.word_forms = true;
        let (_, terms) = view.search_terms("retry", 10, None).unwrap();
        let names: Vec<&str> = terms.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(names, ["retry", "retried", "retries", "retrying"]);
        assert!(
            terms
                .iter()
                .all(|t| t.weight == terms[0].weight && t.weight > 0.0)
        );
    }
}
