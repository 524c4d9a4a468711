//! `config check` and `config example`: the settings in effect and where each came from, and
//! the example file, written from the clap definitions so it names every setting there is.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, CommandFactory as _};

use crate::cli::{Cli, ConfigCommand};
use crate::config;

/// The widest a line of the example file is.
const WIDTH: usize = 100;

/// Runs `config check` or `config example`.
pub(crate) fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check => check(),
        ConfigCommand::Example => {
            out!("{}", example());
            Ok(())
        }
    }
}

/// Prints the settings `serve` and `worker` would run with. The file was already read and
/// checked before the command line was parsed (`config::apply`), so here it is valid.
fn check() -> anyhow::Result<()> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().take(1).collect();
    let parsed = Cli::command().try_get_matches_from(std::env::args_os())?;
    let path = config::path_for(&parsed);
    // Global flags typed with `config check` (`--db …`) stay flags: they beat the file.
    let mut typed = Vec::new();
    for arg in Cli::command()
        .get_arguments()
        .filter(|arg| arg.is_global_set())
    {
        let (Some(key), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        let config_matches = parsed.subcommand_matches("config");
        let typed_in = |matches: &clap::ArgMatches| {
            matches.value_source(id) == Some(ValueSource::CommandLine)
                && !matches!(arg.get_action(), ArgAction::SetTrue)
        };
        let given = [Some(&parsed), config_matches]
            .into_iter()
            .flatten()
            .find(|matches| typed_in(matches));
        if let (true, Some(matches)) = (config::is_setting(key), given) {
            for value in matches.get_raw(id).into_iter().flatten() {
                args.push(format!("--{key}").into());
                args.push(value.to_owned());
            }
            typed.push(id.to_owned());
        }
    }
    match &path {
        Some(path) => {
            args.push("--config".into());
            args.push(path.into());
            outln!("# config file: {} (valid)", path.display());
        }
        None => outln!(
            "# no config file: no --config, and no {}",
            config::DEFAULT_PATH
        ),
    }
    for (index, section) in config::SECTIONS.into_iter().enumerate() {
        let mut section_args = args.clone();
        section_args.push(section.into());
        let merged = config::apply(section_args)?;
        let matches = Cli::command().try_get_matches_from(merged)?;
        let (_, matches) = matches.subcommand().expect("a section is a command");
        let command = Cli::command();
        let sub = command
            .find_subcommand(section)
            .expect("a section is a command");
        if index == 0 {
            // Global flags reach the command's matches too; the top of the file shows them.
            outln!();
            for arg in command.get_arguments().filter(|arg| arg.is_global_set()) {
                print_setting(arg, matches, &typed);
            }
        }
        outln!();
        outln!("[{section}]");
        for arg in sub.get_arguments().filter(|arg| !arg.is_global_set()) {
            print_setting(arg, matches, &typed);
        }
    }
    Ok(())
}

/// `key = value  # source` for one setting, the database URL's password masked; `typed` are
/// the ids of the flags typed on the command line (any other flag came from the file).
fn print_setting(arg: &Arg, matches: &clap::ArgMatches, typed: &[String]) {
    let Some(key) = arg.get_long().filter(|key| config::is_setting(key)) else {
        return;
    };
    let id = arg.get_id().as_str();
    let source = match matches.value_source(id) {
        Some(ValueSource::CommandLine) if typed.iter().any(|typed| typed == id) => "flag",
        Some(ValueSource::CommandLine) => "file",
        Some(ValueSource::EnvVariable) => "environment",
        Some(ValueSource::DefaultValue) => "default",
        _ => "not set",
    };
    let value = if matches!(arg.get_action(), ArgAction::SetTrue) {
        matches.get_flag(id).to_string()
    } else {
        match matches.get_raw(id) {
            Some(values) => {
                let values: Vec<String> = values
                    .map(|value| {
                        toml_string(&djinn_hook_payload::redact_userinfo(
                            &value.to_string_lossy(),
                        ))
                    })
                    .collect();
                if values.len() == 1 {
                    values[0].clone()
                } else {
                    format!("[{}]", values.join(", "))
                }
            }
            None => {
                outln!("# {key} is not set");
                return;
            }
        }
    };
    outln!("{key} = {value}  # {source}");
}

/// The example config file: each setting commented out, with its help and default.
pub(crate) fn example() -> String {
    let command = Cli::command();
    let mut text = String::new();
    let intro = "The djinn-hooks config file (TOML), read by every command from --config PATH \
        (or DJINN_HOOKS_CONFIG), else from djinn-hooks.toml in the current folder. A key is a \
        flag's long name; a flag or an environment variable overrides the file, which overrides \
        the default. The global settings come first, then [serve] and [worker]. Every line \
        below is commented out: uncomment what you change. `djinn-hooks config check` checks \
        the file and shows the settings in effect. Generated by `djinn-hooks config example`.";
    text.push_str(&comment(intro));
    for arg in command.get_arguments().filter(|arg| arg.is_global_set()) {
        if arg.get_long().is_some_and(config::is_setting) {
            text.push_str(&example_setting(arg));
        }
    }
    for section in config::SECTIONS {
        let sub = command
            .find_subcommand(section)
            .expect("a section is a command");
        text.push_str(&format!("\n[{section}]\n"));
        for arg in sub.get_arguments().filter(|arg| !arg.is_global_set()) {
            if arg.get_long().is_some_and(config::is_setting) {
                text.push_str(&example_setting(arg));
            }
        }
    }
    text
}

/// One setting of the example: its help as comment lines, then `# key = default`.
fn example_setting(arg: &Arg) -> String {
    let key = arg.get_long().expect("settings have a long name");
    let help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    let value = if matches!(arg.get_action(), ArgAction::SetTrue) {
        "false".to_owned()
    } else if let Some(default) = arg.get_default_values().first() {
        toml_string(&default.to_string_lossy())
    } else {
        // No default: the value's placeholder, as in --help, to be replaced.
        arg.get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| key.to_uppercase(), ToString::to_string)
    };
    format!("\n{}# {key} = {value}\n", comment(&help))
}

/// `text` as `# ` comment lines of at most [`WIDTH`] columns, its paragraphs kept.
fn comment(text: &str) -> String {
    let mut out = String::new();
    for paragraph in text.split("\n\n") {
        let mut line = String::from("#");
        for word in paragraph.split_whitespace() {
            if line.len() + 1 + word.len() > WIDTH && line != "#" {
                out.push_str(&line);
                out.push('\n');
                line = String::from("#");
            }
            line.push(' ');
            line.push_str(word);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `value` as TOML: a number as it is, anything else as a basic string.
fn toml_string(value: &str) -> String {
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        return value.to_owned();
    }
    toml::Value::String(value.to_owned()).to_string()
}
