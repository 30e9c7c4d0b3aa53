//! Expanding a load's sources into files to read: inline texts, files,
//! globs and directories (include / exclude filters, symbolic links), paths
//! resolved against the client's working directory and checked against the
//! allowed roots. What cannot be loaded becomes an error line, not a failure.

use std::path::{Path, PathBuf};

use rlm::tools::{DirectorySource, FileSource, GlobSource, InlineSource, Source};

use super::{Skip, SkipKind, io_reason};
use crate::engine::{CallContext, Engine};

/// What a source expands to before reading.
pub(super) enum Item {
    Inline {
        content: String,
        name: Option<String>,
        hint: Option<u64>,
    },
    File {
        path: PathBuf,
        hint: Option<u64>,
    },
}

impl Engine {
    /// Turns one source into items to read, or into error lines.
    pub(super) fn expand_source(
        &self,
        index: usize,
        source: Source,
        ctx: &CallContext,
        items: &mut Vec<Item>,
        skips: &mut Vec<Skip>,
    ) {
        match source {
            Source::Inline(InlineSource {
                content,
                name,
                token_count_hint,
            }) => {
                items.push(Item::Inline {
                    content,
                    name,
                    hint: token_count_hint,
                });
            }
            Source::File(FileSource {
                path,
                token_count_hint,
            }) => match self.resolve(&path, ctx) {
                Ok(p) if self.lexically_outside(&p) => skips.push(self.refused(&p)),
                Ok(p) => match self.check_allowed(&p) {
                    Ok(p) => items.push(Item::File {
                        path: p,
                        hint: token_count_hint,
                    }),
                    Err(s) => skips.push(s),
                },
                Err(line) => skips.push(Skip::new(
                    SkipKind::Other,
                    format!("sources[{index}] (file): {line}"),
                )),
            },
            Source::Glob(GlobSource {
                path,
                include_pattern,
                exclude_pattern,
                token_count_hint,
            }) => {
                let patterns = [include_pattern, exclude_pattern];
                let found = self.walk_source("glob", index, &path, patterns, ctx);
                let (filters, pattern) = match found {
                    Ok(found) => found,
                    Err(skip) => return skips.push(skip),
                };
                let shown = pattern.display().to_string();
                let (base, depth) = glob_base(&pattern);
                let matcher = match GlobMatch::new(&pattern, &base) {
                    Ok(m) => m,
                    Err(e) => {
                        return skips.push(Skip::new(
                            SkipKind::Other,
                            format!("sources[{index}] (glob {path}): invalid pattern: {e}"),
                        ));
                    }
                };
                // (One the file system cannot answer for, say a folder
                // not searchable, is walked: the walk says why.)
                if matches!(base.try_exists(), Ok(false)) {
                    return skips.push(Skip::new(
                        SkipKind::Unreadable,
                        format!("sources[{index}] (glob {shown}): {} does not exist; check the pattern and the working directory", base.display()),
                    ));
                }
                let keep = |p: &Path| matcher.matches(p) && filters.keep(p);
                let walked = walk_files(&base, depth, &keep, ctx, skips);
                walked.refuse_others(keep, skips);
                let mut found = walked.files;
                found.sort();
                if found.is_empty() {
                    skips.push(Skip::new(
                        SkipKind::Other,
                        format!("sources[{index}] (glob {shown}): matched no files; check the pattern and the working directory"),
                    ));
                }
                self.push_files(found, token_count_hint, items, skips);
            }
            Source::Directory(DirectorySource {
                path,
                recursive,
                include_pattern,
                exclude_pattern,
                token_count_hint,
            }) => {
                let patterns = [include_pattern, exclude_pattern];
                let found = self.walk_source("directory", index, &path, patterns, ctx);
                let (filters, dir) = match found {
                    Ok(found) => found,
                    Err(skip) => return skips.push(skip),
                };
                if !dir.is_dir() {
                    let why = if dir.exists() {
                        "is not a directory; use a file source"
                    } else {
                        "does not exist"
                    };
                    return skips.push(Skip::new(
                        SkipKind::Unreadable,
                        format!("{}: {why}", dir.display()),
                    ));
                }
                // Filters see paths under the canonical folder, whatever way it was named.
                let dir = match dir.canonicalize() {
                    Ok(d) => d,
                    Err(e) => {
                        return skips.push(Skip::new(
                            SkipKind::Unreadable,
                            format!("{}: {}", dir.display(), io_reason(&e)),
                        ));
                    }
                };
                let depth = if recursive { usize::MAX } else { 1 };
                let keep = |p: &Path| filters.keep(p);
                let walked = walk_files(&dir, depth, &keep, ctx, skips);
                walked.refuse_others(keep, skips);
                let found = walked.files;
                if found.is_empty() {
                    skips.push(Skip::new(
                        SkipKind::Other,
                        format!(
                            "sources[{index}] (directory {}): no files{}{}",
                            dir.display(),
                            if recursive {
                                ""
                            } else {
                                " directly inside (set recursive: true to descend)"
                            },
                            if filters.any() {
                                " matching include_pattern / exclude_pattern"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                self.push_files(found, token_count_hint, items, skips);
            }
        }
    }

    /// The path filters and the resolved path of a `kind` source (`glob` or
    /// `directory`), or the line that says why the source loads nothing.
    fn walk_source(
        &self,
        kind: &str,
        index: usize,
        path: &str,
        [include, exclude]: [Option<String>; 2],
        ctx: &CallContext,
    ) -> Result<(Filters, PathBuf), Skip> {
        let filters = Filters::new(include.as_deref(), exclude.as_deref()).map_err(|line| {
            Skip::new(
                SkipKind::Other,
                format!("sources[{index}] ({kind} {path}): {line}"),
            )
        })?;
        let resolved = self.resolve(path, ctx).map_err(|line| {
            Skip::new(
                SkipKind::Other,
                format!("sources[{index}] ({kind}): {line}"),
            )
        })?;
        // Refused before the file system is asked anything: nothing outside
        // the allowed folders is listed, and what exists there is not told.
        let start = if kind == "glob" {
            glob_base(&resolved).0
        } else {
            resolved.clone()
        };
        if self.lexically_outside(&start) {
            return Err(self.refused(&resolved));
        }
        Ok((filters, resolved))
    }

    /// Queues the files a walk found (as walked, canonical), each checked
    /// against the allowed folders.
    fn push_files(
        &self,
        found: Vec<(PathBuf, PathBuf)>,
        hint: Option<u64>,
        items: &mut Vec<Item>,
        skips: &mut Vec<Skip>,
    ) {
        for (_, canonical) in found {
            match self.check_root(canonical) {
                Ok(p) => items.push(Item::File { path: p, hint }),
                Err(s) => skips.push(s),
            }
        }
    }

    /// Resolves a path against the client's working directory.
    fn resolve(&self, path: &str, ctx: &CallContext) -> Result<PathBuf, String> {
        if path.is_empty() {
            return Err("empty path".into());
        }
        // `~/notes.txt` is the user's home, as in a shell.
        let p = &rlm::paths::expand_home(Path::new(path));
        if p.is_absolute() {
            return Ok(p.to_owned());
        }
        match &ctx.cwd {
            Some(cwd) => Ok(cwd.join(p)),
            None => Err(format!(
                "relative path {path:?} but the client sent no working directory; give an absolute path"
            )),
        }
    }

    /// Canonicalizes a file path and checks it against the allowed folders.
    fn check_allowed(&self, path: &Path) -> Result<PathBuf, Skip> {
        match path.canonicalize() {
            Ok(c) => self.check_root(c),
            Err(e) => Err(Skip::new(
                SkipKind::Unreadable,
                format!("{}: {}", path.display(), io_reason(&e)),
            )),
        }
    }

    /// Whether `path`, with its `.` and `..` resolved by name alone, lies
    /// outside every allowed folder (when any are set). Asks nothing of the
    /// file system, so the answer tells nothing of what exists there.
    fn lexically_outside(&self, path: &Path) -> bool {
        let Some(roots) = &self.inner.config.allowed_roots else {
            return false;
        };
        let mut normal = PathBuf::new();
        for c in path.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    normal.pop();
                }
                other => normal.push(other),
            }
        }
        !roots.iter().any(|r| normal.starts_with(r))
    }

    /// The error line of a path outside the allowed folders, the same
    /// whether or not it exists.
    fn refused(&self, path: &Path) -> Skip {
        Skip::new(
            SkipKind::Refused,
            format!(
                "{}: outside the folders this server may read (allowed_roots in its config.toml); give a path inside them, or ask its operator to allow it",
                path.display()
            ),
        )
    }

    /// Checks a canonical path against the allowed folders, if any are set.
    fn check_root(&self, canonical: PathBuf) -> Result<PathBuf, Skip> {
        if let Some(roots) = &self.inner.config.allowed_roots {
            let inside = roots.iter().any(|r| canonical.starts_with(r));
            if !inside {
                return Err(Skip::new(
                    SkipKind::Refused,
                    format!(
                        "{}: outside the folders this server may read (allowed_roots in its config.toml); ask its operator to allow it",
                        canonical.display()
                    ),
                ));
            }
        }
        Ok(canonical)
    }
}

/// Files the walker looks at between two checks of the cancel flag.
const CANCEL_CHECK_EVERY: usize = 512;

/// Entries one walk looks at, at most: a source naming `/` ends with a line
/// that says so instead of walking the whole machine.
const MAX_WALK_ENTRIES: usize = 1_000_000;

/// What a walk found: regular files (as walked, canonical), and entries that
/// are neither files nor folders (as walked, what they are).
struct Walked {
    files: Vec<(PathBuf, PathBuf)>,
    others: Vec<(PathBuf, &'static str)>,
}

impl Walked {
    /// The entries kept by `keep` that are not regular files, as error lines.
    fn refuse_others(&self, keep: impl Fn(&Path) -> bool, skips: &mut Vec<Skip>) {
        for (path, kind) in &self.others {
            if keep(path) {
                skips.push(Skip::new(
                    SkipKind::Other,
                    format!(
                        "{}: is not a regular file (it is {kind}); only regular files are loaded",
                        path.display()
                    ),
                ));
            }
        }
    }
}

/// The regular files under `base` (`base` itself when it is one), at most
/// `depth` levels down, that `keep` keeps (by the path as walked), in walk
/// order (sorted by name at each level), each as walked and as its
/// canonical path. Links are followed, with loop detection: a link back
/// into a folder being walked is not followed again (and counted in one
/// line of `skips`), and a file reached twice (through links) by kept paths
/// is listed once (a path `keep` refuses claims nothing: a link `b.rs` to
/// `a.txt` is loaded by a glob of `*.rs`, whichever the walk meets first).
/// Only kept files are resolved to their canonical paths. Entries that are
/// neither files nor folders (a FIFO, a socket, a device, or a link to one)
/// come back apart, for the caller to report. A cancelled call stops the walk, and so does its
/// `MAX_WALK_ENTRIES`th entry.
fn walk_files(
    base: &Path,
    depth: usize,
    keep: &dyn Fn(&Path) -> bool,
    ctx: &CallContext,
    skips: &mut Vec<Skip>,
) -> Walked {
    let walker = walkdir::WalkDir::new(base)
        .follow_links(true)
        .max_depth(depth)
        .sort_by(by_name);
    // Canonical paths as bytes: hashing a `Path` parses its components.
    let mut seen: std::collections::HashSet<std::ffi::OsString> = std::collections::HashSet::new();
    let mut files = Vec::new();
    let mut others = Vec::new();
    let mut loops = 0usize;
    let mut canonical = Canonical::default();
    for (n, entry) in walker.into_iter().enumerate() {
        if n >= MAX_WALK_ENTRIES {
            skips.push(Skip::new(
                SkipKind::Other,
                format!(
                    "{}: the walk stopped after {MAX_WALK_ENTRIES} entries; name a smaller folder or a narrower glob",
                    base.display()
                ),
            ));
            break;
        }
        if n % CANCEL_CHECK_EVERY == 0 && ctx.cancelled() {
            skips.push(Skip::new(
                SkipKind::Other,
                format!(
                    "{}: the walk stopped: the call was cancelled",
                    base.display()
                ),
            ));
            break;
        }
        match entry {
            // Followed links report their target's type.
            Ok(e) if e.file_type().is_file() && !keep(e.path()) => {}
            Ok(e) if e.file_type().is_file() => match canonical.of(&e) {
                Ok(canonical) => {
                    if seen.insert(canonical.as_os_str().to_owned()) {
                        files.push((e.into_path(), canonical));
                    }
                }
                Err(err) => skips.push(Skip::new(
                    SkipKind::Unreadable,
                    format!("{}: {}", e.path().display(), io_reason(&err)),
                )),
            },
            Ok(e) if e.file_type().is_dir() => canonical.folder(&e),
            Ok(e) => others.push((e.into_path(), "a FIFO, a socket or a device")),
            Err(e) if e.loop_ancestor().is_some() => loops += 1,
            Err(e) => skips.push(Skip::new(
                SkipKind::Unreadable,
                format!(
                    "{}: unreadable while listing {}: {e}",
                    e.path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    base.display()
                ),
            )),
        }
    }
    if loops > 0 {
        skips.push(Skip::new(
            SkipKind::Other,
            format!(
                "{}: {loops} link(s) back into a folder being walked were not followed again (a link loop)",
                base.display()
            ),
        ));
    }
    Walked { files, others }
}

/// The walk's order within a folder: by name, as walkdir's
/// `sort_by_file_name`, which parses each path's components to find its
/// name at every comparison (a quarter of the walk's CPU in a re-load of
/// the 850 MB scale corpus). An entry below the walk's start is its
/// folder's path joined with its name, which holds no separator: its name
/// is what follows the last one.
#[cfg(unix)]
fn by_name(a: &walkdir::DirEntry, b: &walkdir::DirEntry) -> std::cmp::Ordering {
    use std::os::unix::ffi::OsStrExt;
    fn name(e: &walkdir::DirEntry) -> &[u8] {
        let path = e.path().as_os_str().as_bytes();
        path.rsplit(|&c| c == b'/').next().unwrap_or(path)
    }
    name(a).cmp(name(b))
}

#[cfg(not(unix))]
fn by_name(a: &walkdir::DirEntry, b: &walkdir::DirEntry) -> std::cmp::Ordering {
    a.file_name().cmp(b.file_name())
}

/// The canonical paths of a walk's entries, with a system call for a link
/// (or the walk's first folder) and none for the rest: a file or folder that
/// is not a link is its folder's canonical path and its own name. Folders
/// are resolved as the walk meets them, before their entries (a
/// `realpath` of each folder cost a `readlink` per path component: 27 130
/// of them for the 3 593 folders of the crate sources). A folder that fails
/// to resolve is left out, and its files are resolved on their own (each
/// then gives its own error).
#[derive(Default)]
struct Canonical {
    /// Canonical folders by their path as walked (bytes: hashing a `Path`
    /// parses its components).
    folders: std::collections::HashMap<std::ffi::OsString, PathBuf>,
    /// The folder of the last file asked: the walk lists a folder's files
    /// together, so it is checked first, by its bytes, before the map.
    last: Option<(std::ffi::OsString, PathBuf)>,
}

impl Canonical {
    /// The canonical path of the entry's folder, when known.
    fn parent_of(&self, e: &walkdir::DirEntry) -> Option<&Path> {
        let key = e.path().parent()?.as_os_str();
        match &self.last {
            Some((p, dir)) if p.as_os_str() == key => Some(dir),
            _ => self.folders.get(key).map(PathBuf::as_path),
        }
    }

    /// Records the canonical path of a folder the walk entered.
    fn folder(&mut self, e: &walkdir::DirEntry) {
        let resolved = match (e.path_is_symlink(), e.path().file_name()) {
            (false, Some(name)) if e.depth() > 0 => self.parent_of(e).map(|p| p.join(name)),
            _ => None,
        };
        if let Some(dir) = resolved.or_else(|| e.path().canonicalize().ok()) {
            self.folders.insert(e.path().as_os_str().to_owned(), dir);
        }
    }

    /// The canonical path of a file the walk met.
    fn of(&mut self, e: &walkdir::DirEntry) -> std::io::Result<PathBuf> {
        let (false, Some(parent), Some(name)) =
            (e.path_is_symlink(), e.path().parent(), e.path().file_name())
        else {
            return e.path().canonicalize();
        };
        if let Some((p, dir)) = &self.last
            && p.as_os_str() == parent.as_os_str()
        {
            return Ok(dir.join(name));
        }
        let dir = match self.folders.get(parent.as_os_str()) {
            Some(dir) => dir.clone(),
            None => parent.canonicalize()?,
        };
        let file = dir.join(name);
        self.last = Some((parent.as_os_str().to_owned(), dir));
        Ok(file)
    }
}

/// How a glob's paths match: `*`, `?` and classes never match a `/`, and
/// may match a leading dot.
const GLOB_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// A glob's pattern, matched against the paths its walk meets (`base` and
/// the paths under it, as the walk joins them).
struct GlobMatch {
    pattern: glob::Pattern,
    /// For a pattern `BASE/**/NAME`, NAME one component without `**`:
    /// NAME alone, which decides for every path under BASE (`**/` is any
    /// folders, none included), and `BASE`'s length. Matching the whole
    /// pattern tries every split of a path at its `**`: a third of the
    /// walk's CPU in a re-load of the 850 MB scale corpus.
    name: Option<(glob::Pattern, usize)>,
}

impl GlobMatch {
    fn new(pattern: &Path, base: &Path) -> Result<GlobMatch, glob::PatternError> {
        let text = pattern.to_string_lossy();
        let whole = glob::Pattern::new(&text)?;
        let prefix = format!(
            "{}{}**{}",
            base.display(),
            std::path::MAIN_SEPARATOR,
            std::path::MAIN_SEPARATOR
        );
        let name = match text.strip_prefix(&prefix) {
            // The walk joins `base` as the pattern spells it.
            Some(name)
                if pattern.to_str().is_some()
                    && !base.as_os_str().is_empty()
                    && !name.is_empty()
                    && !name.contains("**")
                    && !name.contains(std::path::is_separator) =>
            {
                Some((glob::Pattern::new(name)?, base.as_os_str().len()))
            }
            _ => None,
        };
        Ok(GlobMatch {
            pattern: whole,
            name,
        })
    }

    /// Whether a path the walk met (`base` or under it) matches.
    fn matches(&self, path: &Path) -> bool {
        let Some((name, base_len)) = &self.name else {
            return self.pattern.matches_path_with(path, GLOB_OPTIONS);
        };
        // As the whole pattern: a path that is not UTF-8 matches nothing,
        // and `base` itself does not match `base/**/NAME`.
        match path.to_str() {
            Some(s) if s.len() > *base_len => {
                let last = s.rsplit(std::path::is_separator).next().unwrap_or(s);
                name.matches_with(last, GLOB_OPTIONS)
            }
            _ => false,
        }
    }
}

/// Where a glob's walk starts (the folder its components name before the
/// first wildcard) and how deep it goes (the components after it; no limit
/// with `**`).
fn glob_base(pattern: &Path) -> (PathBuf, usize) {
    let is_wild = |c: &std::ffi::OsStr| {
        let c = c.to_string_lossy();
        c.contains(['*', '?', '['])
    };
    let mut base = PathBuf::new();
    let mut rest = Vec::new();
    for c in pattern.components() {
        if rest.is_empty() && !is_wild(c.as_os_str()) {
            base.push(c);
        } else {
            rest.push(c.as_os_str().to_owned());
        }
    }
    let depth = if rest.iter().any(|c| c.to_string_lossy().contains("**")) {
        usize::MAX
    } else {
        rest.len()
    };
    (base, depth)
}

/// include/exclude regexes of a glob or directory source.
struct Filters {
    include: Option<regex::Regex>,
    exclude: Option<regex::Regex>,
}

impl Filters {
    fn new(include: Option<&str>, exclude: Option<&str>) -> Result<Filters, String> {
        let compile = |field: &str, p: Option<&str>| -> Result<Option<regex::Regex>, String> {
            p.map(|p| {
                regex::Regex::new(p).map_err(|e| format!("{field} {p:?} is not a valid regex: {e}"))
            })
            .transpose()
        };
        Ok(Filters {
            include: compile("include_pattern", include)?,
            exclude: compile("exclude_pattern", exclude)?,
        })
    }

    fn any(&self) -> bool {
        self.include.is_some() || self.exclude.is_some()
    }

    fn keep(&self, path: &Path) -> bool {
        let s = path.to_string_lossy();
        self.include.as_ref().is_none_or(|r| r.is_match(&s))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical path a walk gives each file is the one `realpath`
    /// gives its path as walked: through folders, links to folders inside
    /// and outside the tree, a link to a file, a link to a link.
    #[test]
    fn a_walks_canonical_paths_are_realpaths() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        let outside = tmp.path().join("outside");
        for d in ["a/b/c", "a/d", "e"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(outside.join("deep/er")).unwrap();
        for f in [
            "top.txt",
            "a/one.txt",
            "a/b/two.txt",
            "a/b/c/three.txt",
            "a/d/four.txt",
        ] {
            std::fs::write(root.join(f), f).unwrap();
        }
        std::fs::write(outside.join("deep/er/far.txt"), "far").unwrap();
        symlink(root.join("a/b"), root.join("e/to_b")).unwrap();
        symlink(&outside, root.join("a/d/to_outside")).unwrap();
        symlink(root.join("a/one.txt"), root.join("e/one_link.txt")).unwrap();
        symlink(root.join("e/to_b"), root.join("link_to_link")).unwrap();
        // The walk starts at a path with a link in it.
        symlink(&root, tmp.path().join("tree_link")).unwrap();
        let mut skips = Vec::new();
        let walked = walk_files(
            &tmp.path().join("tree_link"),
            usize::MAX,
            &|_| true,
            &CallContext::default(),
            &mut skips,
        );
        let mut canonical: Vec<PathBuf> = Vec::new();
        for (path, found) in &walked.files {
            assert_eq!(found, &path.canonicalize().unwrap(), "{}", path.display());
            canonical.push(found.clone());
        }
        // Each file once, under its real folder.
        canonical.sort();
        let real = root.canonicalize().unwrap();
        let far = outside.canonicalize().unwrap().join("deep/er/far.txt");
        let mut expected: Vec<PathBuf> = [
            "top.txt",
            "a/one.txt",
            "a/b/two.txt",
            "a/b/c/three.txt",
            "a/d/four.txt",
        ]
        .iter()
        .map(|f| real.join(f))
        .chain([far])
        .collect();
        expected.sort();
        assert_eq!(canonical, expected);
        let lines: Vec<&str> = skips.iter().map(|s| s.line.as_str()).collect();
        assert!(lines.is_empty(), "{lines:?}");
    }

    /// A pattern `BASE/**/NAME` is decided by NAME alone, with the answers
    /// of the whole pattern, for every path a walk from BASE can meet:
    /// BASE itself, files right in it and deep under it, hidden names and
    /// folders, names NAME matches only in part, a path that is not UTF-8.
    #[test]
    fn a_globs_name_alone_answers_as_the_whole_pattern() {
        use std::os::unix::ffi::OsStrExt;
        let base = Path::new("/data/repo");
        let under = [
            "/data/repo",
            "/data/repo/a.rs",
            "/data/repo/x/y/z/b.rs",
            "/data/repo/.hidden/c.rs",
            "/data/repo/x/.d.rs",
            "/data/repo/a.rsx",
            "/data/repo/a.rs/b.txt",
            "/data/repo/x/ab.txt",
            "/data/repo/x/ba.txt",
            "/data/repo/x/a",
            "/data/repo/x/README.md",
            "/data/repo/x/readme.md",
        ];
        let not_utf8 = Path::new(std::ffi::OsStr::from_bytes(b"/data/repo/\xff/a.rs"));
        for name in ["*.rs", "[ab]*.txt", ".*", "?", "README.*", "*", "a*"] {
            let pattern = base.join("**").join(name);
            let m = GlobMatch::new(&pattern, base).unwrap();
            assert!(m.name.is_some(), "{name}: the name decides");
            let whole = glob::Pattern::new(pattern.to_str().unwrap()).unwrap();
            assert!(
                under.iter().any(|p| m.matches(Path::new(p))),
                "{name} matches some"
            );
            for path in under.iter().map(Path::new).chain([not_utf8]) {
                assert_eq!(
                    m.matches(path),
                    whole.matches_path_with(path, GLOB_OPTIONS),
                    "{name} against {}",
                    path.display()
                );
            }
        }
        // Not of that form: the whole pattern decides.
        for pattern in [
            "/data/repo/*.rs",
            "/data/repo/**/x/*.rs",
            "/data/repo/*/**/*.rs",
            "/data/repo/**",
            "/data/repo/**/**/*.rs",
        ] {
            let pattern = Path::new(pattern);
            let (base, _) = glob_base(pattern);
            assert!(
                GlobMatch::new(pattern, &base).unwrap().name.is_none(),
                "{}",
                pattern.display()
            );
        }
    }

    /// The walk meets a folder's entries in the order walkdir's
    /// `sort_by_file_name` gives, whatever their names.
    #[test]
    fn a_walk_meets_each_folders_entries_in_name_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        let names = ["a", "a-b", "a.b", "a0", "B", "b", "é", "Z", "_", "a b"];
        for dir in ["", "a", "a-b", "é"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            for name in names {
                let path = root.join(dir).join(format!("{name}.txt"));
                std::fs::write(path, name).unwrap();
            }
        }
        let order = |sorted: walkdir::WalkDir| -> Vec<PathBuf> {
            sorted.into_iter().map(|e| e.unwrap().into_path()).collect()
        };
        let ours = order(walkdir::WalkDir::new(&root).sort_by(by_name));
        let theirs = order(walkdir::WalkDir::new(&root).sort_by_file_name());
        assert_eq!(ours.len(), 1 + 3 + 4 * names.len());
        assert_eq!(ours, theirs);
    }
}
