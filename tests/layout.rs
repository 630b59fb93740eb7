//! Source layout limits: no `.rs` file under `src/` or `crates/` over [`MAX_FILE_LINES`] lines
//! (its inline `#[cfg(test)] mod` blocks not counted) and no function over [`MAX_FN_LINES`]
//! lines. A small scanner blanks out comments, strings and char literals, then matches braces;
//! it is not a Rust parser, but it is exact for the code in this repository. Offenders are listed
//! as `path:line`.
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 1000;
const MAX_FN_LINES: usize = 150;

/// `text` with comments, string and char literal contents replaced by spaces; newlines and every
/// other character stay where they were, so offsets and line numbers still hold.
fn mask(text: &str) -> Vec<char> {
    let src: Vec<char> = text.chars().collect();
    let mut out = src.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(src.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let mut i = 0;
    while i < src.len() {
        let next = src.get(i + 1).copied();
        let end = match (src[i], next) {
            ('/', Some('/')) => line_end(&src, i),
            ('/', Some('*')) => block_comment_end(&src, i),
            ('"', _) => string_end(&src, i + 1),
            ('r' | 'b', _) if !ident_char(src.get(i.wrapping_sub(1)).copied()) => {
                raw_or_byte_string_end(&src, i).unwrap_or(i + 1)
            }
            ('\'', _) => char_literal_end(&src, i).unwrap_or(i + 1),
            _ => i + 1,
        };
        if end > i + 1 {
            blank(&mut out, i, end);
        }
        i = end;
    }
    out
}

fn ident_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

fn line_end(src: &[char], from: usize) -> usize {
    (from..src.len())
        .find(|&k| src[k] == '\n')
        .unwrap_or(src.len())
}

/// Block comments nest in Rust.
fn block_comment_end(src: &[char], from: usize) -> usize {
    let (mut depth, mut k) = (0usize, from);
    while k + 1 < src.len() {
        match (src[k], src[k + 1]) {
            ('/', '*') => {
                depth += 1;
                k += 2;
            }
            ('*', '/') => {
                depth -= 1;
                k += 2;
                if depth == 0 {
                    return k;
                }
            }
            _ => k += 1,
        }
    }
    src.len()
}

/// The index after the closing quote of a string whose contents start at `from`.
fn string_end(src: &[char], from: usize) -> usize {
    let mut k = from;
    while k < src.len() {
        match src[k] {
            '\\' => k += 2,
            '"' => return k + 1,
            _ => k += 1,
        }
    }
    src.len()
}

/// `r"..."`, `r#"..."#`, `b"..."`, `br#"..."#`: the index after the literal, or `None` when
/// this `r`/`b` starts an identifier.
fn raw_or_byte_string_end(src: &[char], from: usize) -> Option<usize> {
    let mut k = from;
    if src[k] == 'b' {
        k += 1;
        match src.get(k) {
            Some('"') => return Some(string_end(src, k + 1)),
            Some('\'') => return char_literal_end(src, k),
            Some('r') => {}
            _ => return None,
        }
    }
    k += 1; // the `r`
    let hashes = src[k..].iter().take_while(|&&c| c == '#').count();
    k += hashes;
    if src.get(k) != Some(&'"') {
        return None;
    }
    k += 1;
    while k < src.len() {
        if src[k] == '"'
            && src[k + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return Some(k + 1 + hashes);
        }
        k += 1;
    }
    Some(src.len())
}

/// `'x'`, `'\n'`, `'\u{7f}'`: the index after the literal; `None` for a lifetime or label.
fn char_literal_end(src: &[char], from: usize) -> Option<usize> {
    match (src.get(from + 1), src.get(from + 2)) {
        (Some('\\'), _) => (from + 2..src.len().min(from + 14))
            .find(|&k| src[k] == '\'' && k > from + 2)
            .map(|k| k + 1),
        (Some(_), Some('\'')) => Some(from + 3),
        _ => None,
    }
}

/// The index of the brace closing the one at `open`.
fn matching_brace(code: &[char], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, &c) in code.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    code.len().saturating_sub(1)
}

fn line_of(code: &[char], at: usize) -> usize {
    code[..at].iter().filter(|&&c| c == '\n').count() + 1
}

fn word_at(code: &[char], at: usize, word: &str) -> bool {
    let w: Vec<char> = word.chars().collect();
    code.get(at..at + w.len()) == Some(&w[..])
        && !ident_char(at.checked_sub(1).map(|k| code[k]))
        && !ident_char(code.get(at + w.len()).copied())
}

fn skip_ws(code: &[char], mut k: usize) -> usize {
    while k < code.len() && code[k].is_whitespace() {
        k += 1;
    }
    k
}

/// Lines taken by inline `#[cfg(test)] mod name { ... }` blocks, attribute included.
fn test_module_lines(code: &[char]) -> usize {
    let attr: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut lines = 0;
    let mut k = 0;
    while k + attr.len() <= code.len() {
        if code[k..k + attr.len()] != attr[..] {
            k += 1;
            continue;
        }
        let mut m = skip_ws(code, k + attr.len());
        if word_at(code, m, "pub") {
            m = skip_ws(code, m + 3);
        }
        if !word_at(code, m, "mod") {
            k += attr.len();
            continue;
        }
        match (m..code.len()).find(|&j| code[j] == '{' || code[j] == ';') {
            Some(open) if code[open] == '{' => {
                let close = matching_brace(code, open);
                lines += line_of(code, close) - line_of(code, k) + 1;
                k = close + 1;
            }
            _ => k = m + 3,
        }
    }
    lines
}

/// A function's name, the line of its `fn` and how many lines it spans.
struct FnSpan {
    name: String,
    line: usize,
    lines: usize,
}

/// Every function with a body (trait method declarations and `fn` pointer types have none).
fn functions(code: &[char]) -> Vec<FnSpan> {
    let mut out = Vec::new();
    for k in 0..code.len() {
        if !word_at(code, k, "fn") {
            continue;
        }
        let name_at = skip_ws(code, k + 2);
        let name: String = code[name_at..]
            .iter()
            .take_while(|&&c| c.is_alphanumeric() || c == '_')
            .collect();
        if name.is_empty() {
            continue; // `fn(...)` pointer type
        }
        let mut depth = 0i32;
        let body = (name_at..code.len()).find_map(|j| match code[j] {
            '(' | '[' => {
                depth += 1;
                None
            }
            ')' | ']' => {
                depth -= 1;
                None
            }
            '{' if depth == 0 => Some(Some(j)),
            ';' if depth == 0 => Some(None),
            _ => None,
        });
        if let Some(Some(open)) = body {
            let close = matching_brace(code, open);
            out.push(FnSpan {
                name,
                line: line_of(code, k),
                lines: line_of(code, close) - line_of(code, k) + 1,
            });
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every limit a file's text breaks, as `path:line: ...`.
fn offences(path: &str, text: &str) -> Vec<String> {
    let code = mask(text);
    let mut found = Vec::new();
    let lines = text.lines().count() - test_module_lines(&code);
    if lines > MAX_FILE_LINES {
        found.push(format!(
            "{path}:1: {lines} lines outside #[cfg(test)] modules (limit {MAX_FILE_LINES})"
        ));
    }
    for f in functions(&code) {
        if f.lines > MAX_FN_LINES {
            found.push(format!(
                "{path}:{}: fn {} is {} lines (limit {MAX_FN_LINES})",
                f.line, f.name, f.lines
            ));
        }
    }
    found
}

#[test]
fn files_and_functions_stay_within_limits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("crates"), &mut files);
    files.sort();
    assert!(files.len() > 20, "only {} .rs files found", files.len());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        let rel = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        found.extend(offences(&rel, &text));
    }
    assert!(
        found.is_empty(),
        "over the layout limits:\n{}",
        found.join("\n")
    );
}

#[test]
fn scanner_ignores_braces_in_strings_comments_and_chars() {
    let src = r####"
fn a() {
    let s = "}}}{";
    let r = r#"}"{"#;
    let c = '}';
    let e = '\'';
    let b = b'{';
    // }
    /* } /* nested } */ } */
    let l: &'static str = "x";
}
trait T { fn decl(&self); }
fn b(x: [u8; 4], f: fn(u8) -> u8) -> usize { 1 }
#[cfg(test)]
mod tests {
    fn t() {}
}
"####;
    let code = mask(src);
    let fns = functions(&code);
    let spans: Vec<(&str, usize, usize)> = fns
        .iter()
        .map(|f| (f.name.as_str(), f.line, f.lines))
        .collect();
    assert_eq!(spans, [("a", 2, 10), ("b", 13, 1), ("t", 16, 1)]);
    assert_eq!(test_module_lines(&code), 4);
}

#[test]
fn long_functions_and_files_are_reported_with_their_line() {
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let src = format!("// header\nfn long() {{\n{body}}}\nfn short() {{}}\n");
    let found = offences("src/x.rs", &src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("src/x.rs:2: fn long is 152 lines"),
        "{found:?}"
    );

    let filler = "const A: u8 = 0;\n".repeat(MAX_FILE_LINES);
    let tests = format!("#[cfg(test)]\nmod tests {{\n{filler}}}\n");
    assert!(offences("src/y.rs", &tests).is_empty());
    let found = offences("src/z.rs", &format!("{filler}\n"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("src/z.rs:1: 1001 lines"), "{found:?}");
}
