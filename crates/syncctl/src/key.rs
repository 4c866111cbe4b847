//! `syncctl key generate`: a new key for the store's encryption at rest
//! (`storage.encryption_key_file`), written to a file readable by its
//! owner only.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use sync_store::EncryptionKey;

use crate::FormatArg;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeyCommand {
    /// Writes a new random 256-bit key as 64 hexadecimal digits.
    Generate {
        /// The key file to create (it must not exist).
        out: PathBuf,
        #[command(flatten)]
        format: FormatArg,
    },
}

pub(crate) fn run(command: KeyCommand) -> anyhow::Result<ExitCode> {
    let KeyCommand::Generate { out, format } = command;
    let text = EncryptionKey::generate_hex();
    let id = EncryptionKey::from_hex(&text)?.id();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&out)
        .with_context(|| format!("cannot create the key file {}", out.display()))?;
    writeln!(file, "{text}").context("cannot write the key")?;
    file.sync_all().context("cannot write the key")?;
    let value = json!({"file": out, "keyId": format!("{id:08x}")});
    output::result(format.format, &value, || {
        format!("wrote key {id:08x} to {}", out.display())
    });
    Ok(ExitCode::SUCCESS)
}
