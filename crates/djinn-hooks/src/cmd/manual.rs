//! `completions` and `manpages`: the shell completion scripts and man pages, generated from the
//! clap definitions in `cli.rs`, so they describe exactly the flags the binary accepts.

use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell};

/// The program name the scripts complete and the pages are titled with.
const BIN_NAME: &str = "djinn-hooks";

/// Prints the completion script for `shell` to stdout.
pub(crate) fn completions(shell: CompletionShell) -> anyhow::Result<()> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    let script = String::from_utf8(script).context("the completion script is not UTF-8")?;
    out!("{script}");
    Ok(())
}

/// Writes `djinn-hooks.1` and a page per command (`djinn-hooks-hook-create.1`, …) into `dir`,
/// and prints the path of each page written.
pub(crate) fn manpages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // `help` subcommands are clap's, not commands of ours: no page of their own.
    let mut command = without_help_subcommands(Cli::command());
    command.build();
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "1"))
        .collect();
    pages.sort();
    for page in pages {
        outln!("{}", page.display());
    }
    Ok(())
}

/// `command` and its subcommands, without clap's generated `help` subcommand.
fn without_help_subcommands(command: clap::Command) -> clap::Command {
    command
        .disable_help_subcommand(true)
        .mut_subcommands(without_help_subcommands)
}
