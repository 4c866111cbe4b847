//! The project's task runner, run as `cargo xtask <task>` (an alias in
//! `.cargo/config.toml`), so every check a developer or CI runs is one
//! command with no set-up beyond the Rust toolchain.
//!
//! - `cargo xtask ci`: formatting, lints, every test, doctests and docs, with
//!   one summary line at the end.
//! - `cargo xtask bench [--quick]`: every benchmark, then the figures written
//!   into `docs/benchmarks.md` beside their budgets.
//! - `cargo xtask api-fuzz`: schemathesis against a live server, in both
//!   auth modes, from its `/openapi.json` (also a step of `ci`).
//! - `cargo xtask soak [--quick] [--max-minutes N]`: the long crash rounds
//!   of the server and the client and the seeded simulation, bounded in
//!   time, with one summary line at the end.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod api_fuzz;
mod bench;
mod ci;
mod process;
mod soak;
#[cfg(test)]
mod tidy;

use std::path::PathBuf;

use anyhow::{Result, bail};

const USAGE: &str =
    "usage: cargo xtask <ci | bench [--quick] | api-fuzz | soak [--quick] [--max-minutes N]>";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["ci"] => {
            // The summary line must stay the last line printed, so a failed
            // run exits quietly instead of returning an error.
            if !ci::run()? {
                std::process::exit(1);
            }
            Ok(())
        }
        ["api-fuzz"] => {
            if !api_fuzz::run(&ci::server_binary())? {
                std::process::exit(1);
            }
            Ok(())
        }
        ["bench"] => bench::run(false),
        ["bench", "--quick"] => bench::run(true),
        ["soak", options @ ..] => {
            // Like `ci`: the summary line stays the last line printed.
            if !soak::run(&soak::parse_options(options)?)? {
                std::process::exit(1);
            }
            Ok(())
        }
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
