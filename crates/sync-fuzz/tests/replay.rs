//! Replays the kept fuzz inputs: every file under `fuzz/corpus/<target>/`
//! and `fuzz/regressions/<target>/` goes through its target, so CI runs the
//! corpus and every crasher ever found without libFuzzer. Also checks that
//! the cargo-fuzz project has a binary for every target.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_kept_input_passes_its_target() {
    let mut failed = Vec::new();
    let mut replayed = 0;
    for target in sync_fuzz::TARGETS {
        for kind in ["corpus", "regressions"] {
            for path in inputs(&fuzz_dir().join(kind).join(target)) {
                let data = fs::read(&path).unwrap_or_default();
                let outcome = catch_unwind(AssertUnwindSafe(|| sync_fuzz::run(target, &data)));
                replayed += 1;
                if outcome.is_err() {
                    failed.push(path.display().to_string());
                }
            }
        }
    }
    assert!(failed.is_empty(), "inputs that fail: {failed:#?}");
    assert!(
        replayed > 0,
        "no corpus found under {}",
        fuzz_dir().display()
    );
}

#[test]
fn every_target_has_a_fuzz_binary_and_a_corpus() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap_or_default();
    for target in sync_fuzz::TARGETS {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        let text = fs::read_to_string(&source).unwrap_or_default();
        assert!(
            text.contains(&format!("sync_fuzz::{target}(")),
            "{} does not call sync_fuzz::{target}",
            source.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml has no [[bin]] {target}"
        );
        assert!(
            !inputs(&fuzz_dir().join("corpus").join(target)).is_empty(),
            "no corpus for {target}"
        );
    }
    assert!(!sync_fuzz::run("no-such-target", b""));
}
