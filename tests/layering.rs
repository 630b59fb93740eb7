//! Layering check: `flowtest-core` is the pure core, so its normal (non-dev, non-build)
//! dependency tree must not contain an async runtime, a network, TLS or database crate. Those
//! belong to the `flowtest` package's edges. Reads the tree with `cargo tree`, offline.
use std::process::Command;

/// Crates the core must not depend on, directly or through another crate.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "lettre",
    "async-imap",
    "rustls",
    "rusqlite",
    "reqwest",
];

/// Crate-name prefixes the core must not depend on: whole families of the above.
const FORBIDDEN_PREFIXES: &[&str] = &["hickory", "tokio-", "libsqlite3"];

/// The names of every crate in `flowtest-core`'s normal dependency tree, itself included.
fn core_dependencies() -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            "flowtest-core",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn forbidden(name: &str) -> bool {
    FORBIDDEN.contains(&name) || FORBIDDEN_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[test]
fn core_has_no_io_dependencies() {
    let deps = core_dependencies();
    // The listing must be real for the check below to mean anything.
    for expected in ["flowtest-core", "serde", "chrono"] {
        assert!(
            deps.iter().any(|d| d == expected),
            "cargo tree output lacks {expected}: {deps:?}"
        );
    }
    let bad: Vec<&String> = deps.iter().filter(|d| forbidden(d)).collect();
    assert!(
        bad.is_empty(),
        "flowtest-core depends on I/O crates (move the code using them to the flowtest package): {bad:?}"
    );
}

#[test]
fn the_check_recognises_forbidden_names() {
    for name in [
        "tokio",
        "tokio-rustls",
        "hickory-resolver",
        "rusqlite",
        "lettre",
    ] {
        assert!(forbidden(name), "{name}");
    }
    for name in ["serde", "chrono", "mail-parser", "tokenizer"] {
        assert!(!forbidden(name), "{name}");
    }
}

/// The library (`src/` but the binary's `main.rs`, `cmd/` and `bin/`, and `crates/`) writes
/// diagnostics through `tracing` only: no `eprintln!`/`println!` outside tests.
#[test]
fn the_library_prints_nothing_itself() {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("crates"), &mut files);
    let binary = ["src/main.rs", "src/cmd/", "src/bin/"];
    let mut offences = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if binary.iter().any(|b| rel.starts_with(b)) || rel.contains("/tests") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Inline test modules sit at the end of a file.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            if line.contains("eprintln!(") || line.contains("println!(") {
                offences.push(format!("{rel}:{}", i + 1));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "printing in library code: {offences:?}"
    );
}
