//! Diff and apply of 10 KB documents in each format (budget: over
//! 300 MB/s), and three-way merges of 4 KB of text: edits of different
//! lines, and edits of one line.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use sync_core::DiffCalculator;
use sync_diff::{FieldDeltaDiff, JsonPatchDiff, MergePatchDiff, text};

mod documents;

/// The server's allocator (see `sync-service`'s `main.rs`), as in the store
/// benchmark. Under glibc's, the owned JSON Patch apply paid for
/// `malloc_consolidate` once or twice per iteration, set off by which
/// block happened to be freed last (see `docs/benchmarks.md`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use documents::document;

fn notes(edit_start: bool, edit_end: bool) -> String {
    let mut lines: Vec<String> = (0..60)
        .map(|i| format!("Line {i}: follow up on the campaign discussion."))
        .collect();
    if edit_start {
        lines[2] = "Line 2: call back on Monday about pricing.".to_owned();
    }
    if edit_end {
        lines[57] = "Line 57: send the signed contract.".to_owned();
    }
    lines.join("\n")
}

/// Diffs and applies the patch as a client applies a received one: by
/// value, moving its values into the result.
fn diff_apply<D: DiffCalculator>(calculator: &D, old: &Value, new: &Value) -> Value {
    let patch = calculator.diff(old, new);
    calculator.apply_owned(old, patch).unwrap_or(Value::Null)
}

fn benches(c: &mut Criterion) {
    let old = document(false);
    let new = document(true);
    let bytes = serde_json::to_vec(&old).map_or(0, |text| text.len()) as u64;

    let mut group = c.benchmark_group("diff_apply_10kb");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("field_delta", |b| {
        b.iter(|| diff_apply(&FieldDeltaDiff, black_box(&old), black_box(&new)));
    });
    group.bench_function("merge_patch", |b| {
        b.iter(|| diff_apply(&MergePatchDiff, black_box(&old), black_box(&new)));
    });
    group.bench_function("json_patch", |b| {
        b.iter(|| diff_apply(&JsonPatchDiff, black_box(&old), black_box(&new)));
    });
    group.finish();

    let base = notes(false, false);
    let earlier = notes(true, false);
    let later = notes(false, true);
    // Both edited line 2, differently: one overlap, the later kept.
    let overlapping = later.replace(
        "Line 2: follow up on the campaign discussion.",
        "Line 2: call back on Friday.",
    );
    let mut group = c.benchmark_group("text_merge3");
    group.throughput(Throughput::Bytes(base.len() as u64));
    group.bench_function("notes_4kb", |b| {
        b.iter(|| text::merge(black_box(&base), black_box(&earlier), black_box(&later)));
    });
    group.bench_function("notes_4kb_same_line", |b| {
        b.iter(|| {
            text::merge(
                black_box(&base),
                black_box(&earlier),
                black_box(&overlapping),
            )
        });
    });
    group.finish();
}

criterion_group! {
    name = diff;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    targets = benches
}
criterion_main!(diff);
