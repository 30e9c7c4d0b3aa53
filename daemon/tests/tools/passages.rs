//! `rlm.search.query`'s bm25 passages and the structure they follow: a
//! passage starts at a definition of code or a heading of Markdown or HTML,
//! is found by the names it is nested in, and weighs the headers it holds.

use serde_json::{Value, json};

use super::search::{check_match, docs_of};
use crate::common::*;

/// A Python module of two widget classes, each with a `set` method deep in
/// its body (its class's line more than a passage away), every method
/// longer than a passage's minimum; and where that of `Spinbox` starts and
/// ends (code points).
fn widgets_module() -> (String, u64, u64) {
    let method = |name: &str, last: &str| {
        let mut m = format!("\n    def {name}(self, first, last):\n");
        for l in 0..12 {
            m.push_str(&format!(
                "        first = self.index(first) + {l}  # move on\n"
            ));
        }
        m.push_str(&format!("        {last}\n"));
        m
    };
    let set = "self.tk.call(self._w, \"set\", first)";
    let mut text = String::from("import tkinter\n\n\nclass Spinbox(Entry):\n");
    for name in ["bbox", "delete", "get", "icursor"] {
        text.push_str(&method(name, "return first, last"));
    }
    let start = char_len(&text) + 1;
    text.push_str(&method("set", set));
    let end = char_len(&text);
    text.push_str("\n\nclass Scale(Widget):\n");
    for name in ["coords", "identify", "get", "set", "configure"] {
        let last = if name == "set" {
            set
        } else {
            "return first, last"
        };
        text.push_str(&method(name, last));
    }
    (text, start, end)
}

/// A passage starts at a definition, and is found by the header lines of
/// the definitions it is nested in: a method by its class's name, though
/// the class's line lies more than a passage away.
#[test]
fn bm25_passages_start_at_definitions_and_match_their_class() {
    let env = Env::new();
    let sid = env.session();
    let (text, start, end) = widgets_module();
    let doc = env.load(&sid, &text);
    let r = env.search(&sid, json!({"query": "Spinbox set", "context_chars": 100}));
    let m = &r["matches"][0];
    assert_eq!(str_of(m, "doc_id"), doc, "{r}");
    check_match(&text, m);
    // The best passage is Spinbox's `set` method (its highlight is there),
    // found by the class's name, which its context does not hold.
    let hit = |m: &Value| u64_of(&m["span"], "start") + u64_of(m, "highlight_start");
    assert!((start..end).contains(&hit(m)), "{start}..{end}: {r}");
    assert!(!str_of(m, "context").contains("Spinbox"), "{r}");
    // Scale's `set` follows, lower: the same words, but not the class.
    assert!(hit(&r["matches"][1]) > end, "{r}");
    let score = |r: &Value, k: usize| r["matches"][k]["score"].as_f64().unwrap();
    assert!(score(&r, 0) > score(&r, 1) + 0.1, "{r}");
    // Without the class's name, the two methods tie.
    let r = env.search(&sid, json!({"query": "set"}));
    assert!((score(&r, 0) - score(&r, 1)).abs() < 1e-6, "{r}");
}

/// A Markdown file is cut at its headings, and a section is also found by
/// the headings it is nested in: of two `## Linux` sections alike, the one
/// under `# Installation` ranks first for "installation linux", though its
/// own text never says "installation".
#[test]
fn bm25_cuts_markdown_at_headings_and_finds_a_section_by_its_parents() {
    let env = Env::new();
    let sid = env.session();
    let para = |topic: &str| {
        format!("The {topic} steps take a few minutes and need a terminal with a shell.\n\n")
            .repeat(10)
    };
    let (intro, steps) = (para("overview"), para("package"));
    let md = format!(
        "# Installation\n\n{intro}## Linux\n\n{steps}## Windows\n\n{steps}# Configuration\n\n{intro}## Linux\n\n{steps}"
    );
    let linux = md.find("## Linux").unwrap();
    let (start, end) = (
        md[..linux].chars().count() as u64,
        md[..md.find("## Windows").unwrap()].chars().count() as u64,
    );
    env.write_file("docs/guide.md", &md);
    let r = env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "file", "path": "docs/guide.md"}]}),
    );
    assert_eq!(r["loaded"].as_array().map(Vec::len), Some(1), "{r}");
    let r = env.search(
        &sid,
        json!({"query": "installation linux", "context_chars": 100}),
    );
    let m = &r["matches"][0];
    check_match(&md, m);
    let hit = |m: &Value| u64_of(&m["span"], "start") + u64_of(m, "highlight_start");
    assert!((start..end).contains(&hit(m)), "{start}..{end}: {r}");
    assert!(!str_of(m, "context").contains("Installation"), "{r}");
    let score = |k: usize| r["matches"][k]["score"].as_f64().unwrap();
    assert!(score(0) > score(1), "{r}");
}

/// An HTML page is cut at its heading elements, and a section is also found
/// by the headings it is nested in: of two pages alike, each with a `push`
/// method's section far below its title, "Stack push" finds Stack's.
#[test]
fn bm25_cuts_html_at_headings_and_finds_a_section_by_its_title() {
    let env = Env::new();
    let sid = env.session();
    let page = |name: &str| {
        let para = "<p>This step takes a value and keeps it in order with the others.</p>\n";
        format!(
            "<!DOCTYPE html>\n<html><body><h1>Struct <a href=\"#\">{name}</a></h1>\n\
             <h2>Implementations</h2>\n<h4 class=\"code-header\">pub fn new()</h4>\n{}\
             <h4 class=\"code-header\">pub fn <a>push</a>(&amp;mut self, value: T)</h4>\n{}\
             </body></html>\n",
            para.repeat(30),
            para.repeat(12)
        )
    };
    let (stack, queue) = (page("Stack"), page("Queue"));
    let queue_doc = env.load(&sid, &queue);
    let stack_doc = env.load(&sid, &stack);
    let r = env.search(&sid, json!({"query": "Stack push", "context_chars": 100}));
    let m = &r["matches"][0];
    assert_eq!(str_of(m, "doc_id"), stack_doc, "{r}");
    check_match(&stack, m);
    let push = stack[..stack.find("pub fn <a>push").unwrap()]
        .chars()
        .count() as u64;
    let hit = u64_of(&m["span"], "start") + u64_of(m, "highlight_start");
    assert!(hit >= push, "{push}: {r}");
    assert!(!str_of(m, "context").contains("Stack"), "{r}");
    // The match names the section it is in, as a reader sees its heading.
    assert_eq!(m["unit"]["kind"], "section", "{r}");
    assert_eq!(m["unit"]["name"], "pub fn push(&mut self, value: T)", "{r}");
    let section = chars(
        &stack,
        u64_of(&m["unit"], "start"),
        u64_of(&m["unit"], "end"),
    );
    assert!(
        section.starts_with("<h4 class=\"code-header\">pub fn"),
        "{section}"
    );
    assert!(section.ends_with("</body></html>"), "{section}");
    // Queue's push section follows, lower: the same words, but not the title.
    assert_eq!(str_of(&r["matches"][1], "doc_id"), queue_doc, "{r}");
    let score = |k: usize| r["matches"][k]["score"].as_f64().unwrap();
    assert!(score(0) > score(1), "{r}");
    // The headings' markup is not indexed, as the page's is not.
    for hidden in ["href", "class", "amp"] {
        let r = env.search(&sid, json!({"query": hidden}));
        assert_eq!(
            r["matches"].as_array().map(Vec::len),
            Some(0),
            "{hidden}: {r}"
        );
    }
}

/// A definition's header counts twice in its passage: of two passages that
/// each hold a word once, alike otherwise, the one that defines it ranks
/// first.
#[test]
fn bm25_ranks_a_definition_above_a_use() {
    let env = Env::new();
    let sid = env.session();
    let body = "        attempt = attempt + 1  # one more step\n".repeat(14);
    let defines = format!("def backoff(attempt):\n{body}        return attempt\n");
    let uses = format!("def schedule(attempt):\n{body}        return backoff\n");
    let uses_doc = env.load(&sid, &uses);
    let defines_doc = env.load(&sid, &defines);
    let r = env.search(&sid, json!({"query": "backoff"}));
    assert_eq!(docs_of(&r), [defines_doc, uses_doc], "{r}");
}
