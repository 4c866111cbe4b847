//! Printing: results for people or as JSON, errors with their causes, and
//! progress bars that show only on a terminal.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Lines for people.
    Text,
    /// One JSON value.
    Json,
}

/// Prints `value` as pretty JSON, or `text` for people.
pub(crate) fn result(format: Format, value: &Value, text: impl FnOnce() -> String) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Format::Text => {
            let text = text();
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
        }
    }
}

/// One line to standard output, flushed (NDJSON streams, `tail`).
pub(crate) fn line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// A warning or notice for people, on standard error.
pub(crate) fn note(text: &str) {
    eprintln!("syncctl: {text}");
}

/// An error with its chain of causes.
pub(crate) fn error(error: &anyhow::Error) {
    eprintln!("syncctl: error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// A progress bar over `total` items (bytes when `bytes`), drawn on
/// standard error when it is a terminal and hidden otherwise.
pub(crate) fn progress(total: Option<u64>, message: &str, bytes: bool) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = match (total.is_some(), bytes) {
        (true, false) => "{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta})",
        (true, true) => "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
        (false, false) => "{spinner} {msg} {pos} ({per_sec})",
        (false, true) => "{spinner} {msg} {bytes} ({bytes_per_sec})",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}
