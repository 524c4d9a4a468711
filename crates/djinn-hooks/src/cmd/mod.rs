//! One module per command, the dispatch, and what they share: input, output, the store, exit codes.

/// `println!` to stdout that ends the process quietly when the reader has gone
/// (`djinn-hooks … | head`), instead of panicking on the broken pipe.
macro_rules! outln {
    () => {
        $crate::cmd::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cmd::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to stdout, as [`outln!`] without the newline.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cmd::output::write_stdout(format_args!($($arg)*))
    };
}

mod config;
mod deliveries;
mod demo;
mod emit;
mod events;
mod hook;
mod listen;
mod manual;
mod ops;
mod output;
mod process;
mod progress;
mod prune;
mod serve;
mod sign;
mod store;
mod web_ui;
mod worker;

use std::fmt;
use std::io::Read;
use std::path::Path;

use anyhow::Context as _;

use crate::cli::{Cli, Command};

/// Invalid input or usage (exit code 2): the message names the bad field or value.
#[derive(Debug)]
pub(crate) struct Invalid(pub(crate) String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// Returns early with an [`Invalid`] error built like `format!`.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::cmd::Invalid(format!($($arg)*))))
    };
}
pub(crate) use invalid;

/// The exit code for a failed command: 2 for invalid input, 1 for anything else.
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|cause| cause.is::<Invalid>()) {
        2
    } else {
        1
    }
}

/// Runs the command the user asked for.
pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    let global = Global {
        db: cli.db,
        key_file: cli.key_file,
        json: cli.json,
    };
    match cli.command {
        Command::Hook(command) => hook::run(&global, command),
        Command::Emit(args) => emit::run(&global, &args),
        Command::Worker(args) => worker::run(&global, &args),
        Command::Deliveries(command) => deliveries::run(&global, command),
        Command::Redeliver(args) => deliveries::redeliver(&global, &args),
        Command::Prune(args) => prune::run(&global, &args),
        Command::Sign(args) => sign::sign(&global, &args),
        Command::Verify(args) => sign::verify(&global, &args),
        Command::Example(args) => events::example(&args),
        Command::Events => events::list(&global),
        Command::Demo(args) => demo::run(&global, &args),
        Command::Serve(args) => serve::run(&global, &args),
        Command::Listen(args) => listen::run(&global, &args),
        Command::Config(command) => config::run(command),
        Command::Completions { shell } => manual::completions(shell),
        Command::Manpages { dir } => manual::manpages(&dir),
    }
}

/// The options every command sees.
#[derive(Debug)]
pub(crate) struct Global {
    /// The database file, when given (`--db` or `DJINN_HOOKS_DB`).
    pub(crate) db: Option<std::path::PathBuf>,
    /// The key file, when given.
    pub(crate) key_file: Option<std::path::PathBuf>,
    /// Print JSON instead of text.
    pub(crate) json: bool,
}

impl Global {
    /// The database file: the one given, or `djinn-hooks.db` in the current folder.
    pub(crate) fn db(&self) -> std::path::PathBuf {
        self.db.clone().unwrap_or_else(|| DEFAULT_DB.into())
    }
}

/// The database used when none is given.
pub(crate) const DEFAULT_DB: &str = "djinn-hooks.db";

/// Reads a whole file, or stdin when `path` is `None`.
pub(crate) fn read_input(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => Ok(bytes),
            Err(err) => invalid!("cannot read {}: {err}", path.display()),
        },
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read stdin")?;
            Ok(bytes)
        }
    }
}
