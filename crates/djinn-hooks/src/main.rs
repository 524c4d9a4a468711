//! The djinn-hooks binary: parses the command line, runs one command, maps its outcome to an exit
//! code.

mod cli;
mod cmd;
mod config;

/// The JSON shapes of `--json`, the same as the API's.
use djinn_hook_server::entity_json;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match config::apply(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("djinn-hooks: {err}");
            return ExitCode::from(2);
        }
    };
    let cli = cli::Cli::parse_from(args);
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = cmd::exit_code(&err);
            eprintln!("djinn-hooks: {err:#}");
            ExitCode::from(code)
        }
    }
}
