//! Text analysis shared by indexing and querying: Unicode words, lower case, identifier parts.
//!
//! A *word* is a maximal run of characters that are [`char::is_alphanumeric`] or `_`
//! (a run made only of `_` is not a word). Each word is emitted lower-cased as a whole,
//! followed by its identifier parts when it has several: `snake_case` is split on `_`, and
//! `camelCase` / `PascalCase` / `HTTPServer` humps are split where the case changes
//! (`parseHTTPHeader` gives `parsehttpheader`, `parse`, `http`, `header`; `read_file` gives
//! `read_file`, `read`, `file`; `__init__` gives `__init__`, `init`). Parts share the
//! position of their word and carry the byte offsets of the part itself. Chinese and Japanese
//! text (Han, hiragana, katakana), written without spaces, also gives each such char as a
//! part, so that it stays searchable.
//!
//! Tokens longer than [`MAX_TOKEN_BYTES`] (after lower-casing) are dropped (a part of a
//! dropped long identifier is still kept when it is short enough). Stop words (the English
//! list tantivy and Lucene use) and English stemming (Snowball's English stemmer, the one
//! tantivy's `Stemmer` filter applies, with the stems of each thread's most frequent words
//! kept: [`STEM_CACHE_WORDS`]) are switchable through [`AnalyzerOptions`]; the options an
//! index was built with are recorded in its stamp (see `bm25/stamp.rs`).

use std::cell::RefCell;

use rustc_hash::FxHashMap;

use tantivy::tokenizer::{TextAnalyzer, Token as TantivyToken, TokenStream, Tokenizer};

/// The name under which [`text_analyzer`] is registered in a tantivy index.
pub const TOKENIZER_NAME: &str = "rlm";

/// Tokens longer than this many bytes (lower-cased UTF-8) are dropped.
pub const MAX_TOKEN_BYTES: usize = 64;

/// Words whose stems each thread keeps, at most (the first ones it meets, which in any
/// sizeable text are mostly its frequent ones): a Snowball stem costs a few hundred
/// nanoseconds, a lookup a few dozen, and a text repeats its words. About 100 bytes each,
/// so at most ~7 MB for a thread that analyses with stemming (an index build's threads end
/// with the build).
pub const STEM_CACHE_WORDS: usize = 65536;

thread_local! {
    static STEMS: RefCell<FxHashMap<String, String>> = RefCell::new(FxHashMap::default());
}

/// Replaces `word` by its English Snowball stem. Words the stemmer leaves alone anyway are
/// not looked up: shorter than 3 chars (Snowball's English stemmer starts with `not hop
/// 3`) or with no letter (every rule matches letters).
fn stem_in_place(stemmer: &frostem::Stemmer, word: &mut String) {
    if word.len() < 3 || word.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return;
    }
    STEMS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(stem) = cache.get(word.as_str()) {
            word.clear();
            word.push_str(stem);
            return;
        }
        let stem = stemmer.stem(word).into_owned();
        let original = std::mem::replace(word, stem);
        if cache.len() < STEM_CACHE_WORDS {
            cache.insert(original, word.clone());
        }
    });
}

/// The English Snowball stem of `word` (as [`AnalyzerOptions::stemming`] would index it),
/// through the same per-thread cache.
pub fn english_stem(stemmer: &frostem::Stemmer, word: &str) -> String {
    let mut word = word.to_owned();
    stem_in_place(stemmer, &mut word);
    word
}

/// Snowball's English stemmer, for [`english_stem`].
pub fn english_stemmer() -> frostem::Stemmer {
    frostem::Stemmer::new(frostem::Algorithm::English)
}

/// The English stop words removed when [`AnalyzerOptions::stop_words`] is on: the list of
/// tantivy's `StopWordFilter::new(Language::English)` (Lucene's `EnglishAnalyzer` list).
pub const ENGLISH_STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// Switches of the analysis. Both indexing and querying must use the same options; an
/// index records the ones it was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnalyzerOptions {
    /// Drop English stop words ([`ENGLISH_STOP_WORDS`]).
    pub stop_words: bool,
    /// Reduce words to their English snowball stem (after stop-word removal).
    pub stemming: bool,
}

impl AnalyzerOptions {
    /// The options new indexes are built with.
    pub const DEFAULT: AnalyzerOptions = AnalyzerOptions {
        stop_words: true,
        stemming: false,
    };

    /// A short stable description, e.g. `stop=1;stem=0` (used in index stamps).
    pub fn describe(&self) -> String {
        format!(
            "stop={};stem={}",
            u8::from(self.stop_words),
            u8::from(self.stemming)
        )
    }

    /// Parses what [`AnalyzerOptions::describe`] wrote.
    pub fn parse(description: &str) -> Option<AnalyzerOptions> {
        let mut stop_words = None;
        let mut stemming = None;
        for item in description.split(';') {
            let (key, value) = item.split_once('=')?;
            let value = match value {
                "0" => false,
                "1" => true,
                _ => return None,
            };
            let slot = match key {
                "stop" => &mut stop_words,
                "stem" => &mut stemming,
                _ => return None,
            };
            if slot.replace(value).is_some() {
                return None;
            }
        }
        Some(AnalyzerOptions {
            stop_words: stop_words?,
            stemming: stemming?,
        })
    }
}

impl Default for AnalyzerOptions {
    fn default() -> Self {
        AnalyzerOptions::DEFAULT
    }
}

/// One token of [`analyze`]: the indexed term and where it comes from in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The term as indexed (lower-cased, maybe stemmed).
    pub term: String,
    /// Byte offset of the first byte of the word or part in the analysed text.
    pub byte_start: usize,
    /// Byte offset just after the word or part.
    pub byte_end: usize,
}

/// Analyses `text` exactly as the index does, returning the tokens in text order (a word
/// first, then its parts).
pub fn analyze(text: &str, opts: AnalyzerOptions) -> Vec<Token> {
    let mut out = Vec::new();
    for_each_token(text, opts, |t| {
        out.push(Token {
            term: t.text.clone(),
            byte_start: t.offset_from,
            byte_end: t.offset_to,
        });
    });
    out
}

/// The distinct terms of `text` as the index analyses it, in their first
/// order (a query's words: each looked up and scored once).
pub fn distinct_terms(text: &str, opts: AnalyzerOptions) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut terms = Vec::new();
    for t in analyze(text, opts) {
        if seen.insert(t.term.clone()) {
            terms.push(t.term);
        }
    }
    terms
}

/// Runs the analysis of `text` and hands every token to `sink` (no allocation per token
/// beyond what the analysis itself needs).
pub fn for_each_token(text: &str, opts: AnalyzerOptions, mut sink: impl FnMut(&TantivyToken)) {
    let mut tokenizer = RlmTokenizer::new(opts);
    let mut stream = tokenizer.token_stream(text);
    while let Some(token) = stream.next() {
        sink(token);
    }
}

/// The tantivy analyzer to register as [`TOKENIZER_NAME`] for these options.
pub fn text_analyzer(opts: AnalyzerOptions) -> TextAnalyzer {
    TextAnalyzer::from(RlmTokenizer::new(opts))
}

/// The tokenizer: words, lower case, identifier parts, long-token removal, and (as the
/// options say) stop-word removal and stemming.
#[derive(Clone)]
pub struct RlmTokenizer {
    stop_words: bool,
    stemmer: Option<frostem::Stemmer>,
    token: TantivyToken,
    parts: Vec<(usize, usize)>,
}

impl std::fmt::Debug for RlmTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RlmTokenizer")
            .field("stop_words", &self.stop_words)
            .field("stemming", &self.stemmer.is_some())
            .finish_non_exhaustive()
    }
}

impl RlmTokenizer {
    /// A tokenizer with these options.
    pub fn new(opts: AnalyzerOptions) -> RlmTokenizer {
        RlmTokenizer {
            stop_words: opts.stop_words,
            stemmer: opts
                .stemming
                .then(|| frostem::Stemmer::new(frostem::Algorithm::English)),
            token: TantivyToken::default(),
            parts: Vec::new(),
        }
    }
}

impl Tokenizer for RlmTokenizer {
    type TokenStream<'a> = RlmTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> RlmTokenStream<'a> {
        self.token.reset();
        self.parts.clear();
        RlmTokenStream {
            text,
            cursor: 0,
            token: &mut self.token,
            parts: &mut self.parts,
            next_part: 0,
            position: usize::MAX,
            stop_words: self.stop_words,
            stemmer: self.stemmer,
        }
    }
}

/// The token stream of [`RlmTokenizer`].
pub struct RlmTokenStream<'a> {
    text: &'a str,
    /// Byte offset where the search for the next word starts.
    cursor: usize,
    token: &'a mut TantivyToken,
    /// Byte ranges of the parts of the current word still to emit (from `next_part`).
    parts: &'a mut Vec<(usize, usize)>,
    next_part: usize,
    /// Position of the current word (wrapping from `usize::MAX` to 0 on the first word).
    position: usize,
    stop_words: bool,
    stemmer: Option<frostem::Stemmer>,
}

/// A word found by [`RlmTokenStream::next_word`].
struct Word {
    start: usize,
    end: usize,
    /// Only ASCII lower-case letters and digits: already lower case and a single part.
    simple: bool,
    /// Contains at least one alphanumeric character (not only `_`).
    has_alnum: bool,
}

#[inline]
fn char_at(text: &str, byte: usize) -> char {
    // `byte` is always a char boundary here; a failure would be a bug, so fall back safely.
    text[byte..].chars().next().unwrap_or('\0')
}

/// Byte classes for the word scan (bit flags, 0 = separator).
const LOWER: u8 = 1; // ASCII lower-case letter or digit
const UPPER: u8 = 2; // ASCII upper-case letter
const UNDERSCORE: u8 = 4;
const NON_ASCII: u8 = 8; // a byte of a multi-byte char: decode it

static BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        table[b] = if c >= 0x80 {
            NON_ASCII
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            LOWER
        } else if c.is_ascii_uppercase() {
            UPPER
        } else if c == b'_' {
            UNDERSCORE
        } else {
            0
        };
        b += 1;
    }
    table
};

impl RlmTokenStream<'_> {
    fn next_word(&mut self) -> Option<Word> {
        let text = self.text;
        let bytes = text.as_bytes();
        let len = bytes.len();
        let mut i = self.cursor;
        // Skip to the next word character.
        while i < len {
            let class = BYTE_CLASS[bytes[i] as usize];
            if class == 0 {
                i += 1;
            } else if class == NON_ASCII {
                let c = char_at(text, i);
                if c.is_alphanumeric() {
                    break;
                }
                i += c.len_utf8();
            } else {
                break;
            }
        }
        if i >= len {
            self.cursor = len;
            return None;
        }
        let start = i;
        let mut flags = 0u8;
        while i < len {
            let class = BYTE_CLASS[bytes[i] as usize];
            if class == 0 {
                break;
            }
            if class == NON_ASCII {
                let c = char_at(text, i);
                if !c.is_alphanumeric() {
                    break;
                }
                i += c.len_utf8();
            } else {
                i += 1;
            }
            flags |= class;
        }
        self.cursor = i;
        Some(Word {
            start,
            end: i,
            simple: flags == LOWER,
            has_alnum: flags & (LOWER | UPPER | NON_ASCII) != 0,
        })
    }

    /// Makes the current token the lower-cased `text[start..end]`; false when the filters
    /// (length, stop words) drop it.
    fn set_token(&mut self, start: usize, end: usize, already_lower: bool) -> bool {
        // A char lower-cases to at least a third of its UTF-8 length (e.g. KELVIN SIGN -> k),
        // so anything this long stays too long: skip the work.
        if end - start > 3 * MAX_TOKEN_BYTES {
            return false;
        }
        let src = &self.text[start..end];
        let token = &mut *self.token;
        token.text.clear();
        if already_lower {
            token.text.push_str(src);
        } else if src.is_ascii() {
            token.text.push_str(src);
            token.text.make_ascii_lowercase();
        } else {
            for c in src.chars() {
                token.text.extend(c.to_lowercase());
            }
        }
        if token.text.len() > MAX_TOKEN_BYTES {
            return false;
        }
        if self.stop_words && is_stop_word(&token.text) {
            return false;
        }
        if let Some(stemmer) = &self.stemmer {
            stem_in_place(stemmer, &mut token.text);
        }
        token.offset_from = start;
        token.offset_to = end;
        token.position = self.position;
        token.position_length = 1;
        true
    }
}

fn is_stop_word(word: &str) -> bool {
    // The same list as ENGLISH_STOP_WORDS (a test checks it), as patterns of
    // bytes: a jump on the length, then on the bytes. A match of the strings
    // compared them one literal after another, a `memcmp` call each: 3% of
    // the instructions of indexing HTML.
    matches!(
        *word.as_bytes(),
        [b'a']
            | [b'a', b'n' | b's' | b't']
            | [b'b', b'e' | b'y']
            | [b'i', b'f' | b'n' | b's' | b't']
            | [b'n', b'o']
            | [b'o', b'f' | b'n' | b'r']
            | [b't', b'o']
            | [b'a', b'n', b'd']
            | [b'a', b'r', b'e']
            | [b'b', b'u', b't']
            | [b'f', b'o', b'r']
            | [b'n', b'o', b't']
            | [b't', b'h', b'e']
            | [b'w', b'a', b's']
            | [b'i', b'n', b't', b'o']
            | [b's', b'u', b'c', b'h']
            | [b't', b'h', b'a', b't']
            | [b't', b'h', b'e', b'n' | b'y']
            | [b't', b'h', b'i', b's']
            | [b'w', b'i', b'l', b'l']
            | [b'w', b'i', b't', b'h']
            | [b't', b'h', b'e', b'i', b'r']
            | [b't', b'h', b'e', b'r', b'e']
            | [b't', b'h', b'e', b's', b'e']
    )
}

/// Chinese / Japanese characters (Han ideographs, hiragana, katakana): these scripts do not
/// separate words with spaces, so a whole sentence is one "word"; each such char is also
/// emitted as a part, which keeps such text searchable (by its characters).
fn is_unspaced_script(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'   // hiragana, katakana
        | '\u{31F0}'..='\u{31FF}' // katakana phonetic extensions
        | '\u{3400}'..='\u{4DBF}' // CJK extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
        | '\u{FF66}'..='\u{FF9F}' // half-width katakana
        | '\u{20000}'..='\u{323AF}' // CJK extensions B to H, compatibility supplement
    )
}

/// Pushes the byte ranges of the identifier parts of the word `text[start..end]` into `out`:
/// split on `_`, then at case humps (`aB` -> `a|B`, `1B` -> `1|B`, `ABc` -> `A|Bc`).
fn split_parts(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let word = &text[start..end];
    if word.is_ascii() {
        split_ascii_parts(word.as_bytes(), start, out);
    } else {
        split_unicode_parts(word, start, out);
    }
}

/// [`split_parts`] of any word, char by char.
fn split_unicode_parts(word: &str, start: usize, out: &mut Vec<(usize, usize)>) {
    let end = start + word.len();
    let mut part_start: Option<usize> = None;
    let mut prev: Option<char> = None;
    let mut chars = word.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '_' {
            if let Some(ps) = part_start.take() {
                out.push((start + ps, start + i));
            }
            prev = None;
            continue;
        }
        if is_unspaced_script(c) {
            // Scripts written without spaces: each char is a part of its own.
            if let Some(ps) = part_start.take() {
                out.push((start + ps, start + i));
            }
            out.push((start + i, start + i + c.len_utf8()));
            prev = None;
            continue;
        }
        if let Some(p) = prev {
            let boundary = c.is_uppercase()
                && (p.is_lowercase()
                    || p.is_numeric()
                    || (p.is_uppercase()
                        && chars.peek().is_some_and(|&(_, next)| next.is_lowercase())));
            if boundary {
                if let Some(ps) = part_start {
                    out.push((start + ps, start + i));
                }
                part_start = Some(i);
            }
        }
        if part_start.is_none() {
            part_start = Some(i);
        }
        prev = Some(c);
    }
    if let Some(ps) = part_start {
        out.push((start + ps, end));
    }
}

/// [`split_parts`] of an ASCII word, byte by byte: the same rules, where
/// upper case, lower case and numeric are the ASCII classes (most words of
/// code and prose; the char-by-char walk with Unicode tables was a tenth of
/// an index build's CPU on code).
fn split_ascii_parts(word: &[u8], start: usize, out: &mut Vec<(usize, usize)>) {
    let mut part_start: Option<usize> = None;
    let mut prev: Option<u8> = None;
    for (i, &c) in word.iter().enumerate() {
        if c == b'_' {
            if let Some(ps) = part_start.take() {
                out.push((start + ps, start + i));
            }
            prev = None;
            continue;
        }
        if let Some(p) = prev
            && c.is_ascii_uppercase()
            && (p.is_ascii_lowercase()
                || p.is_ascii_digit()
                || (p.is_ascii_uppercase() && word.get(i + 1).is_some_and(u8::is_ascii_lowercase)))
        {
            if let Some(ps) = part_start {
                out.push((start + ps, start + i));
            }
            part_start = Some(i);
        }
        if part_start.is_none() {
            part_start = Some(i);
        }
        prev = Some(c);
    }
    if let Some(ps) = part_start {
        out.push((start + ps, start + word.len()));
    }
}

/// The byte ranges of the tokens of the ASCII word `text[start..end]` (a maximal run of
/// ASCII letters, digits and `_`), in the order [`RlmTokenStream`] makes them, before its
/// stop-word filter: the whole word (when it has a letter or a digit), then its identifier
/// parts when it has several; a range longer than [`MAX_TOKEN_BYTES`] is left out. Each
/// token is the ASCII lower case of its range. `parts` is scratch space.
pub fn ascii_word_tokens(
    text: &str,
    start: usize,
    end: usize,
    parts: &mut Vec<(usize, usize)>,
    mut token: impl FnMut(usize, usize),
) {
    let word = &text.as_bytes()[start..end];
    debug_assert!(
        word.iter()
            .all(|&b| BYTE_CLASS[b as usize] & (LOWER | UPPER | UNDERSCORE) != 0)
    );
    if !word.iter().any(u8::is_ascii_alphanumeric) {
        return; // only `_`: not a word
    }
    if end - start <= MAX_TOKEN_BYTES {
        token(start, end);
    }
    if word.iter().all(|&b| BYTE_CLASS[b as usize] == LOWER) {
        return; // a single part
    }
    parts.clear();
    split_parts(text, start, end, parts);
    if parts.as_slice() == [(start, end)] {
        return;
    }
    for &(s, e) in parts.iter() {
        if e - s <= MAX_TOKEN_BYTES {
            token(s, e);
        }
    }
}

impl TokenStream for RlmTokenStream<'_> {
    fn advance(&mut self) -> bool {
        loop {
            if self.next_part < self.parts.len() {
                let (start, end) = self.parts[self.next_part];
                self.next_part += 1;
                if self.set_token(start, end, false) {
                    return true;
                }
                continue;
            }
            let Some(word) = self.next_word() else {
                self.parts.clear();
                self.next_part = 0;
                return false;
            };
            self.parts.clear();
            self.next_part = 0;
            if !word.has_alnum {
                continue;
            }
            self.position = self.position.wrapping_add(1);
            if !word.simple {
                split_parts(self.text, word.start, word.end, self.parts);
                if self.parts.len() == 1 && self.parts[0] == (word.start, word.end) {
                    self.parts.clear();
                }
            }
            if self.set_token(word.start, word.end, word.simple) {
                return true;
            }
        }
    }

    fn token(&self) -> &TantivyToken {
        self.token
    }

    fn token_mut(&mut self) -> &mut TantivyToken {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::Language;

    const NO_STOP: AnalyzerOptions = AnalyzerOptions {
        stop_words: false,
        stemming: false,
    };

    fn terms(text: &str, opts: AnalyzerOptions) -> Vec<String> {
        analyze(text, opts).into_iter().map(|t| t.term).collect()
    }

    /// Every token's offsets are char boundaries and the source lower-cases to the term
    /// (without stemming).
    fn check_offsets(text: &str, opts: AnalyzerOptions) {
        for t in analyze(text, opts) {
            assert!(text.is_char_boundary(t.byte_start) && text.is_char_boundary(t.byte_end));
            assert!(t.byte_start < t.byte_end);
            if !opts.stemming {
                assert_eq!(text[t.byte_start..t.byte_end].to_lowercase(), t.term);
            }
        }
    }

    #[test]
    fn snake_case() {
        assert_eq!(terms("read_file", NO_STOP), ["read_file", "read", "file"]);
        assert_eq!(terms("__init__", NO_STOP), ["__init__", "init"]);
        assert_eq!(terms("a_", NO_STOP), ["a_", "a"]);
        assert_eq!(
            terms("MAX_TOKEN_BYTES", NO_STOP),
            ["max_token_bytes", "max", "token", "bytes"]
        );
        // Only underscores: not a word.
        assert!(terms("_ __ ___", NO_STOP).is_empty());
    }

    #[test]
    fn camel_and_humps() {
        assert_eq!(
            terms("parseHTTPHeader", NO_STOP),
            ["parsehttpheader", "parse", "http", "header"]
        );
        assert_eq!(
            terms("HTTPServer", NO_STOP),
            ["httpserver", "http", "server"]
        );
        assert_eq!(
            terms("PascalCase", NO_STOP),
            ["pascalcase", "pascal", "case"]
        );
        assert_eq!(terms("IOError", NO_STOP), ["ioerror", "io", "error"]);
        assert_eq!(terms("Hello", NO_STOP), ["hello"]);
        assert_eq!(terms("HELLO", NO_STOP), ["hello"]);
        assert_eq!(
            terms("get_userName", NO_STOP),
            ["get_username", "get", "user", "name"]
        );
    }

    #[test]
    fn digits() {
        assert_eq!(
            terms("utf8Decode", NO_STOP),
            ["utf8decode", "utf8", "decode"]
        );
        assert_eq!(
            terms("HTTP2Server", NO_STOP),
            ["http2server", "http2", "server"]
        );
        assert_eq!(terms("x86_64", NO_STOP), ["x86_64", "x86", "64"]);
        assert_eq!(
            terms("base64 sha256 42", NO_STOP),
            ["base64", "sha256", "42"]
        );
    }

    #[test]
    fn non_ascii_words() {
        assert_eq!(terms("Größe naïve", NO_STOP), ["größe", "naïve"]);
        assert_eq!(terms("ÉCOLE café", NO_STOP), ["école", "café"]);
        // Han and kana: the run, then each char.
        assert_eq!(
            terms("日本語 テキ", NO_STOP),
            ["日本語", "日", "本", "語", "テキ", "テ", "キ"]
        );
        assert_eq!(terms("中", NO_STOP), ["中"]);
        assert_eq!(
            terms("HTML文書です", NO_STOP),
            ["html文書です", "html", "文", "書", "で", "す"]
        );
        // A long sentence is too long as a whole, not as chars.
        let sentence = "日本語の文章は単語の間に空白を入れずに書かれます";
        let got = terms(sentence, NO_STOP);
        assert_eq!(got.len(), sentence.chars().count());
        assert_eq!(got[0], "日");
        // Hangul is written with spaces: words as usual.
        assert_eq!(terms("한국어 텍스트", NO_STOP), ["한국어", "텍스트"]);
        assert_eq!(terms("größeWert", NO_STOP), ["größewert", "größe", "wert"]);
        check_offsets("Größe naïve 日本語 ÉCOLE größeWert İstanbul", NO_STOP);
    }

    #[test]
    fn punctuation_and_offsets() {
        let text = "fn main() { let x = a.b(c)?; } // done: \"ok\"";
        assert_eq!(
            terms(text, NO_STOP),
            ["fn", "main", "let", "x", "a", "b", "c", "done", "ok"]
        );
        let toks = analyze("  parseHTTPHeader(x)", NO_STOP);
        let spans: Vec<(&str, usize, usize)> = toks
            .iter()
            .map(|t| (t.term.as_str(), t.byte_start, t.byte_end))
            .collect();
        assert_eq!(
            spans,
            [
                ("parsehttpheader", 2, 17),
                ("parse", 2, 7),
                ("http", 7, 11),
                ("header", 11, 17),
                ("x", 18, 19)
            ]
        );
        // Non-ASCII offsets are byte offsets of the original text.
        let text = "é read_file ü";
        let toks = analyze(text, NO_STOP);
        assert_eq!(toks[1].term, "read_file");
        assert_eq!(&text[toks[1].byte_start..toks[1].byte_end], "read_file");
        assert_eq!(&text[toks[3].byte_start..toks[3].byte_end], "file");
        check_offsets(text, NO_STOP);
        assert!(terms("?!... ,;: -- ()", NO_STOP).is_empty());
        assert!(terms("", NO_STOP).is_empty());
    }

    #[test]
    fn parts_share_positions() {
        let mut tokenizer = RlmTokenizer::new(NO_STOP);
        let mut stream = tokenizer.token_stream("one read_file two");
        let mut got = Vec::new();
        while let Some(t) = stream.next() {
            got.push((t.text.clone(), t.position));
        }
        let want: Vec<(String, usize)> = [
            ("one", 0),
            ("read_file", 1),
            ("read", 1),
            ("file", 1),
            ("two", 2),
        ]
        .iter()
        .map(|&(s, p)| (s.to_string(), p))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn stop_words_toggle() {
        let text = "The cat is on the mat and this_is_it";
        assert_eq!(
            terms(text, NO_STOP),
            [
                "the",
                "cat",
                "is",
                "on",
                "the",
                "mat",
                "and",
                "this_is_it",
                "this",
                "is",
                "it"
            ]
        );
        let with_stop = AnalyzerOptions {
            stop_words: true,
            stemming: false,
        };
        assert_eq!(terms(text, with_stop), ["cat", "mat", "this_is_it"]);
        assert_eq!(terms("What is the a?", with_stop), ["what"]);
    }

    #[test]
    fn stemming_toggle() {
        let stem = AnalyzerOptions {
            stop_words: true,
            stemming: true,
        };
        assert_eq!(terms("running Runs", stem), ["run", "run"]);
        assert_eq!(terms("running Runs", NO_STOP), ["running", "runs"]);
        let toks = analyze("the runningDogs", stem);
        assert_eq!(toks[1].term, "run");
        assert_eq!((toks[1].byte_start, toks[1].byte_end), (4, 11));
    }

    #[test]
    fn stemming_matches_tantivys_stemmer_filter() {
        // More distinct words than a thread keeps stems of, twice over: the stems
        // computed, then cached, then computed again once the cache is full.
        let syllables = [
            "ru", "nn", "ing", "ed", "al", "ize", "ation", "ly", "er", "ness",
        ];
        let mut text = String::from(
            "The runningDogs parse_http_headers, Größe 日本語 généralement. ed s ly ing 1s 12 \
             1234 007_ __ 9ing _ies ies é日 ß 'tis y ys sky's",
        );
        for i in 0..3 * STEM_CACHE_WORDS {
            let (a, b, c) = (i % 10, (i / 10) % 10, (i / 100) % 10);
            text.push_str(&format!(
                "{}{}{}{} ",
                syllables[a],
                syllables[b],
                syllables[c],
                i / 1000
            ));
            text.push_str(&format!(
                "{}{}{}s ",
                syllables[c], syllables[a], syllables[b]
            ));
        }
        let stem = AnalyzerOptions {
            stop_words: true,
            stemming: true,
        };
        let mut reference = TextAnalyzer::builder(RlmTokenizer::new(AnalyzerOptions {
            stop_words: true,
            stemming: false,
        }))
        .filter(tantivy::tokenizer::Stemmer::new(Language::English))
        .build();
        let mut want = Vec::new();
        let mut stream = reference.token_stream(&text);
        while let Some(t) = stream.next() {
            want.push(Token {
                term: t.text.clone(),
                byte_start: t.offset_from,
                byte_end: t.offset_to,
            });
        }
        assert!(want.iter().any(|t| t.term == "run"));
        for _ in 0..2 {
            assert_eq!(analyze(&text, stem), want);
        }
    }

    #[test]
    fn long_tokens_dropped() {
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        let exact = "y".repeat(MAX_TOKEN_BYTES);
        let text = format!("a {long} {exact} b");
        assert_eq!(terms(&text, NO_STOP), ["a", exact.as_str(), "b"]);
        // The parts of a long identifier survive.
        let ident = format!("{}_short", "z".repeat(70));
        assert_eq!(terms(&ident, NO_STOP), ["short"]);
        let huge = "Q".repeat(10_000);
        assert!(terms(&huge, NO_STOP).is_empty());
    }

    #[test]
    fn stop_word_list_matches() {
        for w in ENGLISH_STOP_WORDS {
            assert!(is_stop_word(w), "{w}");
        }
        for w in ["", "th", "thee", "thes", "an_", "these_", "x", "own", "The"] {
            assert!(!is_stop_word(w), "{w}");
        }
        // And no other word of up to five of the letters the list uses.
        let letters = b"abcdefhilnorstuwy";
        let mut words: Vec<Vec<u8>> = vec![Vec::new()];
        let mut checked = 0;
        for _ in 0..5 {
            words = words
                .iter()
                .flat_map(|w| {
                    letters.iter().map(move |&c| {
                        let mut w = w.clone();
                        w.push(c);
                        w
                    })
                })
                .collect();
            for w in &words {
                let w = std::str::from_utf8(w).unwrap();
                assert_eq!(is_stop_word(w), ENGLISH_STOP_WORDS.contains(&w), "{w}");
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            17 + 17 * 17 + 17usize.pow(3) + 17usize.pow(4) + 17usize.pow(5)
        );
        // The same list as tantivy's English StopWordFilter.
        let mut analyzer = TextAnalyzer::builder(tantivy::tokenizer::SimpleTokenizer::default())
            .filter(tantivy::tokenizer::StopWordFilter::new(Language::English).unwrap())
            .build();
        let all = ENGLISH_STOP_WORDS.join(" ");
        let mut stream = analyzer.token_stream(&all);
        assert!(stream.next().is_none());
    }

    #[test]
    fn options_describe_parse() {
        for stop_words in [false, true] {
            for stemming in [false, true] {
                let o = AnalyzerOptions {
                    stop_words,
                    stemming,
                };
                assert_eq!(AnalyzerOptions::parse(&o.describe()), Some(o));
            }
        }
        assert_eq!(AnalyzerOptions::DEFAULT.describe(), "stop=1;stem=0");
        assert_eq!(AnalyzerOptions::parse("stop=1"), None);
        assert_eq!(AnalyzerOptions::parse("stop=1;stem=2"), None);
        assert_eq!(AnalyzerOptions::parse("stop=1;stem=0;x=1"), None);
    }

    #[test]
    fn tantivy_analyzer_matches_analyze() {
        let text = "The parseHTTPHeader of read_file, Größe 日本語 running";
        for opts in [
            NO_STOP,
            AnalyzerOptions::DEFAULT,
            AnalyzerOptions {
                stop_words: true,
                stemming: true,
            },
        ] {
            let mut analyzer = text_analyzer(opts);
            let mut stream = analyzer.token_stream(text);
            let mut got = Vec::new();
            while let Some(t) = stream.next() {
                got.push(Token {
                    term: t.text.clone(),
                    byte_start: t.offset_from,
                    byte_end: t.offset_to,
                });
            }
            assert_eq!(got, analyze(text, opts));
        }
    }

    /// The tokens of an ASCII text, word by word through [`ascii_word_tokens`].
    fn ascii_tokens(text: &str) -> Vec<Token> {
        let bytes = text.as_bytes();
        let in_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let mut out = Vec::new();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if !in_word(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && in_word(bytes[i]) {
                i += 1;
            }
            ascii_word_tokens(text, start, i, &mut parts, |s, e| {
                out.push(Token {
                    term: text[s..e].to_ascii_lowercase(),
                    byte_start: s,
                    byte_end: e,
                });
            });
        }
        out
    }

    #[test]
    fn ascii_word_tokens_examples() {
        for text in [
            "parseHTTPHeader(x) read_file __init__ _ __ a_ HTTP2Server x86_64 IOError",
            "MAX_TOKEN_BYTES get_userName utf8Decode ABc aB 1B _x_ x__y",
        ] {
            assert_eq!(ascii_tokens(text), analyze(text, NO_STOP), "{text}");
        }
        let long = format!(
            "{}_short {} {}",
            "z".repeat(70),
            "Q".repeat(65),
            "y".repeat(64)
        );
        assert_eq!(ascii_tokens(&long), analyze(&long, NO_STOP));
    }

    proptest::proptest! {
        #[test]
        fn offsets_always_valid(text in "[a-zA-Z0-9_ .é日Ö\\-\n]{0,200}") {
            check_offsets(&text, NO_STOP);
            check_offsets(&text, AnalyzerOptions::DEFAULT);
        }

        #[test]
        fn ascii_word_tokens_match_analysis(
            text in "([a-zA-Z0-9_]{1,8}|[A-Z]{1,4}[a-z]{1,4}|_{1,3}|[a-z]{60,70}|[ .(\n])(_|[a-zA-Z0-9 .(\n]){0,200}"
        ) {
            proptest::prop_assert_eq!(ascii_tokens(&text), analyze(&text, NO_STOP));
        }

        #[test]
        fn ascii_parts_split_as_unicode_parts_do(word in "[a-zA-Z0-9_]{1,24}") {
            let (mut ascii, mut unicode) = (Vec::new(), Vec::new());
            split_ascii_parts(word.as_bytes(), 7, &mut ascii);
            split_unicode_parts(&word, 7, &mut unicode);
            proptest::prop_assert_eq!(ascii, unicode);
        }
    }
}
