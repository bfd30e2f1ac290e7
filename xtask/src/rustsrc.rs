//! A small, dependency-free reading of Rust source for the audit: comment
//! and string blanking, the module tree under a cfg, line counting and the
//! `unsafe` inventory. It is deliberately simple (no macro expansion, no
//! `#[path]`), and says so in its results rather than guessing.
//!
//! Line rule (what [`count_code_lines`] counts): a line counts when it still
//! has a non-whitespace character after comments (`//`, `/* */`, doc
//! comments) are blanked; blank and comment-only lines do not count. Items
//! under a `#[cfg(...)]` that is false for the build (always `test`, plus
//! features, target and `loom`/`miri`/`doc`) are skipped with their whole
//! body, as are module files they would pull in; `tests/`, `benches/` and
//! `examples/` directories are never part of a crate's module tree.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The configuration a crate is compiled under, for `#[cfg]` evaluation.
#[derive(Debug, Clone)]
pub struct Cfg {
    pub features: BTreeSet<String>,
    pub target_arch: String,
    pub target_os: String,
    pub pointer_width: String,
    pub endian: String,
}

impl Cfg {
    pub fn aarch64_none(features: BTreeSet<String>) -> Cfg {
        Cfg {
            features,
            target_arch: "aarch64".into(),
            target_os: "none".into(),
            pointer_width: "64".into(),
            endian: "little".into(),
        }
    }

    /// Evaluates a cfg predicate (the text inside `cfg(...)`). Unknown
    /// names count as true (the code is counted, never hidden).
    pub fn eval(&self, pred: &str) -> bool {
        let p = pred.trim();
        for (name, f) in [("all(", true), ("any(", false)] {
            if let Some(inner) = p.strip_prefix(name).and_then(|s| s.strip_suffix(')')) {
                let parts = split_top(inner);
                return if f {
                    parts.iter().all(|x| self.eval(x))
                } else {
                    parts.iter().any(|x| self.eval(x))
                };
            }
        }
        if let Some(inner) = p.strip_prefix("not(").and_then(|s| s.strip_suffix(')')) {
            return !self.eval(inner);
        }
        if let Some((k, v)) = p.split_once('=') {
            let v = v.trim().trim_matches('"');
            return match k.trim() {
                "feature" => self.features.contains(v),
                "target_arch" => self.target_arch == v,
                "target_os" => self.target_os == v,
                "target_pointer_width" => self.pointer_width == v,
                "target_endian" => self.endian == v,
                _ => true,
            };
        }
        !matches!(
            p,
            "test" | "loom" | "miri" | "doc" | "doctest" | "debug_assertions" | "fuzzing"
        )
    }
}

/// Splits at top-level commas.
fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// Source with comments blanked (`nocomment`) and additionally string and
/// char literal contents blanked (`code`); both keep every byte offset and
/// newline of the original.
pub struct Blanked {
    pub nocomment: Vec<u8>,
    pub code: Vec<u8>,
}

pub fn blank(src: &str) -> Blanked {
    let b = src.as_bytes();
    let mut nc = b.to_vec();
    let mut code = b.to_vec();
    let blank_at = |v: &mut Vec<u8>, i: usize| {
        if v[i] != b'\n' {
            v[i] = b' ';
        }
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                blank_at(&mut nc, i);
                blank_at(&mut code, i);
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    for k in i..i + 2 {
                        blank_at(&mut nc, k);
                        blank_at(&mut code, k);
                    }
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    for k in i..i + 2 {
                        blank_at(&mut nc, k);
                        blank_at(&mut code, k);
                    }
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank_at(&mut nc, i);
                    blank_at(&mut code, i);
                    i += 1;
                }
            }
        } else if c == b'r'
            && (next == Some(b'"') || next == Some(b'#'))
            && (i == 0 || !is_ident(b[i - 1]))
        {
            // Raw string r"..." / r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                j += 1;
                let start = j;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == b'"'
                        && b[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == b'#')
                            .count()
                            == hashes
                    {
                        break;
                    }
                    j += 1;
                }
                for k in start..j.min(b.len()) {
                    blank_at(&mut code, k);
                }
                i = j + 1 + hashes;
            } else {
                i += 1;
            }
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                if b[j] == b'\\' {
                    blank_at(&mut code, j);
                    j += 1;
                }
                if j < b.len() {
                    blank_at(&mut code, j);
                }
                j += 1;
            }
            i = j + 1;
        } else if c == b'\'' {
            // Char literal or lifetime.
            if next == Some(b'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                for k in i + 1..j.min(b.len()) {
                    blank_at(&mut code, k);
                }
                i = j + 1;
            } else if b.get(i + 2) == Some(&b'\'') {
                blank_at(&mut code, i + 1);
                i += 3;
            } else if next.is_some_and(|n| n >= 0x80) {
                // Multi-byte char literal.
                let mut j = i + 1;
                while j < b.len() && b[j] != b'\'' && j < i + 6 {
                    j += 1;
                }
                if b.get(j) == Some(&b'\'') {
                    for k in i + 1..j {
                        blank_at(&mut code, k);
                    }
                    i = j + 1;
                } else {
                    i += 1;
                }
            } else {
                i += 1; // lifetime
            }
        } else {
            i += 1;
        }
    }
    Blanked {
        nocomment: nc,
        code,
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn line_of(b: &[u8], off: usize) -> usize {
    b[..off.min(b.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
}

/// Index just past the bracket matching the one at `open` (in `code`).
fn matching(code: &[u8], open: usize) -> usize {
    let mut depth = 0i32;
    let mut i = open;
    while i < code.len() {
        match code[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    code.len()
}

fn skip_ws(code: &[u8], mut i: usize) -> usize {
    while i < code.len() && code[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// End (exclusive) of the item starting at `i`: after skipping further
/// attributes, the first `;` or balanced `{...}` at bracket depth 0.
fn item_end(code: &[u8], mut i: usize) -> usize {
    loop {
        i = skip_ws(code, i);
        if code.get(i) == Some(&b'#') && code.get(i + 1) == Some(&b'[') {
            i = matching(code, i + 1);
        } else {
            break;
        }
    }
    let mut depth = 0i32;
    while i < code.len() {
        match code[i] {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b';' if depth == 0 => return i + 1,
            b'{' if depth == 0 => return matching(code, i),
            b'}' if depth == 0 => return i, // end of enclosing block
            _ => {}
        }
        i += 1;
    }
    code.len()
}

/// One source file of a crate's module tree, with the lines that a false
/// cfg removes.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    /// Per line: whether it is compiled in under the cfg.
    pub live: Vec<bool>,
}

impl SourceFile {
    /// Lines counted by the line rule (live, not blank after blanking
    /// comments).
    pub fn code_lines(&self) -> usize {
        let bl = blank(&self.text);
        let nc = String::from_utf8_lossy(&bl.nocomment).into_owned();
        nc.split('\n')
            .enumerate()
            .filter(|(i, l)| self.live.get(*i).copied().unwrap_or(true) && !l.trim().is_empty())
            .count()
    }
}

/// The files of the crate rooted at `root_file` (src/lib.rs or src/main.rs)
/// that are compiled under `cfg`, following `mod name;` declarations.
pub fn module_tree(root_file: &Path, cfg: &Cfg) -> Vec<SourceFile> {
    let mut out = Vec::new();
    visit(root_file, true, cfg, &mut out);
    out
}

fn visit(file: &Path, is_dir_owner: bool, cfg: &Cfg, out: &mut Vec<SourceFile>) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let bl = blank(&text);
    let code = &bl.code;
    let nlines = text.split('\n').count();
    let mut live = vec![true; nlines];
    let dir = if is_dir_owner {
        file.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        file.with_extension("")
    };
    let mut children = Vec::new();
    let mut i = 0;
    while i < code.len() {
        if code[i] == b'#' {
            let inner = code.get(i + 1) == Some(&b'!');
            let open = if inner { i + 2 } else { i + 1 };
            if code.get(open) == Some(&b'[') {
                let close = matching(code, open);
                let attr = String::from_utf8_lossy(&bl.nocomment[open + 1..close - 1]);
                let attr = attr.trim();
                if let Some(pred) = attr.strip_prefix("cfg(").and_then(|s| s.strip_suffix(')'))
                    && !cfg.eval(pred)
                {
                    if inner {
                        // `#![cfg(...)]` removes the whole file.
                        return;
                    }
                    let end = item_end(code, close);
                    for l in line_of(code, i)..=line_of(code, end.saturating_sub(1)) {
                        if let Some(x) = live.get_mut(l) {
                            *x = false;
                        }
                    }
                    i = end;
                    continue;
                }
                i = close;
                continue;
            }
        }
        // `mod name;` declarations.
        if code[i..].starts_with(b"mod")
            && (i == 0 || !is_ident(code[i - 1]))
            && code.get(i + 3).is_some_and(|c| c.is_ascii_whitespace())
        {
            let j = skip_ws(code, i + 3);
            let mut k = j;
            while k < code.len() && is_ident(code[k]) {
                k += 1;
            }
            let name = String::from_utf8_lossy(&code[j..k]).into_owned();
            let after = skip_ws(code, k);
            if !name.is_empty() && code.get(after) == Some(&b';') {
                children.push(name);
            }
            i = k;
            continue;
        }
        i += 1;
    }
    out.push(SourceFile {
        path: file.to_path_buf(),
        text,
        live,
    });
    for name in children {
        let a = dir.join(format!("{name}.rs"));
        let b = dir.join(&name).join("mod.rs");
        if a.is_file() {
            visit(&a, false, cfg, out);
        } else if b.is_file() {
            visit(&b, true, cfg, out);
        }
    }
}

/// What an `unsafe` keyword introduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnsafeKind {
    Block,
    Fn,
    Impl,
    Trait,
    Extern,
    Attribute,
}

impl UnsafeKind {
    pub fn name(self) -> &'static str {
        match self {
            UnsafeKind::Block => "block",
            UnsafeKind::Fn => "fn",
            UnsafeKind::Impl => "impl",
            UnsafeKind::Trait => "trait",
            UnsafeKind::Extern => "extern",
            UnsafeKind::Attribute => "attribute",
        }
    }
}

/// One `unsafe` site.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnsafeSite {
    /// Path relative to the workspace root.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    pub kind: UnsafeKind,
    /// A `// SAFETY:` comment directly above (or, for an unsafe fn, a
    /// `# Safety` doc section).
    pub documented: bool,
    /// Whether the line is compiled in (false: under a false cfg such as
    /// `#[cfg(test)]`).
    pub live: bool,
}

/// Every `unsafe` in `text`. `live` marks compiled-in lines (all true when
/// scanning without a cfg).
pub fn unsafe_sites(rel: &str, text: &str, live: Option<&[bool]>) -> Vec<UnsafeSite> {
    let bl = blank(text);
    let code = &bl.code;
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = find_word(code, b"unsafe", i) {
        i = p + 6;
        let j = skip_ws(code, i);
        let rest = &code[j..];
        let kind = if rest.starts_with(b"{") {
            UnsafeKind::Block
        } else if word_at(rest, b"fn") {
            UnsafeKind::Fn
        } else if word_at(rest, b"impl") {
            UnsafeKind::Impl
        } else if word_at(rest, b"trait") {
            UnsafeKind::Trait
        } else if word_at(rest, b"extern") {
            UnsafeKind::Extern
        } else if rest.starts_with(b"(") {
            UnsafeKind::Attribute
        } else {
            continue;
        };
        let line = line_of(code, p);
        out.push(UnsafeSite {
            file: rel.to_string(),
            line: line + 1,
            kind,
            documented: documented(&lines, line, kind),
            live: live.and_then(|l| l.get(line).copied()).unwrap_or(true),
        });
    }
    out
}

fn word_at(s: &[u8], w: &[u8]) -> bool {
    s.starts_with(w) && s.get(w.len()).is_none_or(|&c| !is_ident(c))
}

fn find_word(code: &[u8], w: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + w.len() <= code.len() {
        if &code[i..i + w.len()] == w
            && (i == 0 || !is_ident(code[i - 1]))
            && code.get(i + w.len()).is_none_or(|&c| !is_ident(c))
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Whether the `unsafe` on 0-based `line` has its justification directly
/// above: the contiguous comment lines above it (attribute lines are
/// skipped) contain `SAFETY:` — or `# Safety` for an unsafe fn/trait. When
/// the `unsafe` is not the first token of its line (`let x = unsafe {`,
/// an argument on a continuation line), the comment may sit above the
/// statement's first line, as clippy's `undocumented_unsafe_blocks` allows.
fn documented(lines: &[&str], line: usize, kind: UnsafeKind) -> bool {
    let accept = |c: &str| {
        c.contains("SAFETY:")
            || (matches!(kind, UnsafeKind::Fn | UnsafeKind::Trait) && c.contains("# Safety"))
    };
    let mut start = line;
    for _ in 0..8 {
        let mut l = start;
        let mut comments = Vec::new();
        while l > 0 {
            l -= 1;
            let t = lines[l].trim_start();
            if t.starts_with("//") {
                comments.push(t);
            } else if t.starts_with("#[") || t.starts_with("#![") {
                continue;
            } else {
                break;
            }
        }
        if comments.iter().any(|c| accept(c)) {
            return true;
        }
        if !comments.is_empty() || start == 0 {
            return false;
        }
        // Continuation line: step up to the previous line if it does not
        // end a statement or block.
        let prev = lines[start - 1].trim_end();
        if prev.is_empty()
            || prev.ends_with(';')
            || prev.ends_with('}')
            || prev.ends_with('{')
                && !prev.trim_start().starts_with("let ")
                && !prev.ends_with("= {")
                && !prev.ends_with("({")
        {
            return false;
        }
        start -= 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_comments_and_strings() {
        let src = "let a = \"// not a comment { \"; // comment {\n/* block\n { */ let c = '{'; let l: &'a str;";
        let b = blank(src);
        let code = String::from_utf8(b.code).unwrap();
        assert!(!code.contains("comment"));
        assert!(!code.contains('{'), "{code}");
        assert!(code.contains("'a str"));
        let nc = String::from_utf8(b.nocomment).unwrap();
        assert!(nc.contains("// not a comment {"));
        assert_eq!(nc.split('\n').count(), 3);
    }

    #[test]
    fn counts_and_cfg() {
        let dir = std::env::temp_dir().join(format!("xtask-rustsrc-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(
            dir.join("lib.rs"),
            "//! doc\n\nmod a;\n#[cfg(test)]\nmod t;\n#[cfg(feature = \"x\")]\nmod x;\nfn f() {}\n#[cfg(test)]\nmod tests {\n    fn g() {}\n}\n",
        )
        .unwrap();
        std::fs::write(dir.join("a.rs"), "// c\nfn a() {\n    /* x */\n}\nmod b;\n").unwrap();
        std::fs::write(dir.join("a/b.rs"), "#![cfg(loom)]\nfn b() {}\n").unwrap();
        std::fs::write(dir.join("t.rs"), "fn t() {}\n").unwrap();
        std::fs::write(dir.join("x.rs"), "fn x() {}\n").unwrap();
        let cfg = Cfg::aarch64_none(BTreeSet::new());
        let files = module_tree(&dir.join("lib.rs"), &cfg);
        let names: Vec<_> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["lib.rs", "a.rs"]);
        assert_eq!(files[0].code_lines(), 2, "mod a; fn f");
        assert_eq!(files[1].code_lines(), 3, "fn a() {{ }} mod b;");
        let mut feats = BTreeSet::new();
        feats.insert("x".to_string());
        let files = module_tree(&dir.join("lib.rs"), &Cfg::aarch64_none(feats));
        assert_eq!(files.len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cfg_eval() {
        let c = Cfg::aarch64_none(BTreeSet::new());
        assert!(!c.eval("test"));
        assert!(c.eval("not(test)"));
        assert!(c.eval("all(target_arch = \"aarch64\", target_os = \"none\")"));
        assert!(!c.eval("any(target_arch = \"x86_64\", loom)"));
    }

    #[test]
    fn unsafe_inventory() {
        // `U` stands for the keyword, so that this fixture is not itself
        // read as unsafe code by source scanners.
        let src = "\
// SAFETY: fine
U { a() };
let x = U { b() };
/// # Safety
/// caller
pub U fn f() {}
// SAFETY: x
#[allow(x)]
U impl Send for X {}
#![forbid(unsafe_code)]
let s = \"U { }\";
foo(
    U { c() },
);
"
        .replace('U', "unsafe");
        let s = unsafe_sites("f.rs", &src, None);
        let got: Vec<_> = s.iter().map(|u| (u.line, u.kind, u.documented)).collect();
        assert_eq!(
            got,
            [
                (2, UnsafeKind::Block, true),
                (3, UnsafeKind::Block, false),
                (6, UnsafeKind::Fn, true),
                (9, UnsafeKind::Impl, true),
                (13, UnsafeKind::Block, false),
            ]
        );
    }
}
