//! The flowtest binary's allocator is built as `.cargo/config.toml` asks: mimalloc committing its
//! arenas' memory lazily. With mimalloc's Linux default (eager commit) the canary's peak RSS was
//! 39 MB instead of 21 MB against a 30 MB budget (bench/canary_footprint.sh), and the setting is
//! easy to lose silently (a CFLAGS in the environment replaces it), so the built binary is asked.
use std::process::Command;

#[test]
fn the_binary_runs_mimalloc_with_lazy_arena_commit() {
    // mimalloc prints its options at start-up when MIMALLOC_VERBOSE is set.
    let out = Command::new(env!("CARGO_BIN_EXE_flowtest"))
        .arg("--version")
        .env("MIMALLOC_VERBOSE", "1")
        .env_remove("MIMALLOC_ARENA_EAGER_COMMIT")
        .output()
        .expect("the flowtest binary runs");
    assert!(out.status.success(), "flowtest --version failed: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let option = stderr
        .lines()
        .find(|l| l.contains("option 'arena_eager_commit'"))
        .unwrap_or_else(|| panic!("mimalloc printed no arena_eager_commit option:\n{stderr}"));
    assert!(
        option.contains("'arena_eager_commit': 0"),
        "mimalloc commits arenas eagerly ({option}); is CFLAGS set in the environment?"
    );
}
