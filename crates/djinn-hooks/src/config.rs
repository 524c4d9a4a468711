//! The config file (TOML): every flag of `serve` and `worker`, and the global `db` and
//! `key-file`, kept in one file for configuration management.
//!
//! A key is the flag's long name (`max-deliveries = 1024` for `--max-deliveries 1024`): the
//! global settings at the top, `serve`'s in `[serve]`, `worker`'s in `[worker]`. Precedence is
//! flag, then environment, then file, then default: the file's settings are added to the
//! command line as flags only where clap found neither a flag nor an environment variable, so
//! clap parses and checks everything once, as it would typed flags. Each value is checked with
//! the flag's own parser first, so a bad one is refused naming the file, line, section and key.
//!
//! The file is `--config PATH` (or `DJINN_HOOKS_CONFIG`), else `djinn-hooks.toml` in the
//! current folder when it exists, beside the default database `djinn-hooks.db`.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command, CommandFactory as _};
use toml::de::{DeTable, DeValue};

use crate::cli::Cli;

/// The config file read when `--config` is not given, if it exists.
pub(crate) const DEFAULT_PATH: &str = "djinn-hooks.toml";

/// The commands whose flags the file may set, each in its own section.
pub(crate) const SECTIONS: [&str; 2] = ["serve", "worker"];

/// Global flags that are not settings: where the file is, and the output format.
const NOT_SETTINGS: [&str; 3] = ["config", "json", "help"];

/// A config file that cannot be used, naming where and why.
#[derive(Debug)]
pub(crate) struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// One setting read from the file: its flag, and the arguments it adds to the command line.
#[derive(Debug)]
struct Setting {
    /// `None` for the global settings, else the section (`serve`, `worker`).
    section: Option<String>,
    /// The clap id of the flag.
    id: String,
    /// `--flag value` (or `--flag` for a switch that is on, nothing for one that is off).
    args: Vec<OsString>,
}

/// The file to read: the one named by `--config`/`DJINN_HOOKS_CONFIG`, else the default one
/// when it exists, else none.
pub(crate) fn path_for(matches: &ArgMatches) -> Option<PathBuf> {
    match matches.get_one::<PathBuf>("config") {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|path| path.is_file()),
    }
}

/// `args` with the config file's settings added where neither a flag nor the environment gave
/// one. Arguments clap refuses are returned as they are, for clap to report.
pub(crate) fn apply(args: Vec<OsString>) -> Result<Vec<OsString>, ConfigError> {
    let Ok(matches) = Cli::command().try_get_matches_from(&args) else {
        return Ok(args);
    };
    let Some(path) = path_for(&matches) else {
        return Ok(args);
    };
    let settings = read(&path)?;
    let subcommand = matches.subcommand();
    let mut globals = Vec::new();
    let mut section_args = Vec::new();
    for setting in settings {
        match &setting.section {
            None if !given(&matches, subcommand, &setting.id) => globals.extend(setting.args),
            Some(section) => {
                if let Some((name, sub_matches)) = subcommand
                    && name == section
                    && !given(sub_matches, None, &setting.id)
                {
                    section_args.extend(setting.args);
                }
            }
            None => {}
        }
    }
    let mut merged = Vec::with_capacity(args.len() + globals.len() + section_args.len());
    let mut args = args.into_iter();
    merged.extend(args.next());
    // Global flags go first (clap takes them anywhere); the section's go last, after the
    // command's name. serve and worker take no positional argument they could be mistaken for.
    merged.extend(globals);
    merged.extend(args);
    merged.extend(section_args);
    Ok(merged)
}

/// Whether a flag or an environment variable set `id`, at the top or in the subcommand.
fn given(matches: &ArgMatches, subcommand: Option<(&str, &ArgMatches)>, id: &str) -> bool {
    let from_user = |matches: &ArgMatches| {
        matches.try_get_raw(id).ok().flatten().is_some()
            && !matches!(
                matches.value_source(id),
                None | Some(ValueSource::DefaultValue)
            )
    };
    from_user(matches) || subcommand.is_some_and(|(_, sub)| from_user(sub))
}

/// Reads and checks the whole file: every key names a flag, every value that flag accepts.
fn read(path: &Path) -> Result<Vec<Setting>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigError(format!(
            "cannot read the config file {}: {err}",
            path.display()
        ))
    })?;
    let at = |offset: usize| Location::new(path, &text, offset);
    let table = DeTable::parse(&text).map_err(|err| {
        let offset = err.span().map_or(0, |span| span.start);
        ConfigError(format!("{}: not TOML: {}", at(offset), err.message()))
    })?;
    let command = Cli::command();
    let mut settings = Vec::new();
    for (key, value) in table.get_ref() {
        let name = key.get_ref().as_ref();
        let location = at(key.span().start);
        match value.get_ref() {
            DeValue::Table(section) => {
                let Some(sub) = SECTIONS
                    .contains(&name)
                    .then(|| command.find_subcommand(name))
                    .flatten()
                else {
                    return Err(ConfigError(format!(
                        "{location}: unknown section [{name}]; the file has the global \
                         settings at the top and sections [serve] and [worker]"
                    )));
                };
                for (key, value) in section {
                    let flag = key.get_ref().as_ref();
                    let location = at(key.span().start);
                    let setting = setting(sub, Some(name), flag, value.get_ref(), &location)?;
                    settings.push(setting);
                }
            }
            value => settings.push(setting(&command, None, name, value, &location)?),
        }
    }
    Ok(settings)
}

/// The setting `key = value` of `section` (`None`: the global ones), checked against the flag.
fn setting(
    command: &Command,
    section: Option<&str>,
    key: &str,
    value: &DeValue<'_>,
    location: &Location,
) -> Result<Setting, ConfigError> {
    let place = match section {
        Some(section) => format!("{location}: [{section}] {key}"),
        None => format!("{location}: {key}"),
    };
    let arg = command
        .get_arguments()
        .filter(|arg| section.is_some() || arg.is_global_set())
        .find(|arg| arg.get_long() == Some(key) && is_setting(key))
        .ok_or_else(|| {
            let known = known_keys(command, section).join(", ");
            ConfigError(format!("{place}: unknown key; the keys here are: {known}"))
        })?;
    let flag = OsString::from(format!("--{key}"));
    let switch = matches!(arg.get_action(), ArgAction::SetTrue);
    let values = match (value, switch) {
        (DeValue::Boolean(on), true) => {
            let args = if *on { vec![flag] } else { Vec::new() };
            return Ok(Setting {
                section: section.map(str::to_owned),
                id: arg.get_id().to_string(),
                args,
            });
        }
        (_, true) => {
            return Err(ConfigError(format!("{place}: expected true or false")));
        }
        (DeValue::Array(items), false) if arg.get_action().takes_values() => items
            .iter()
            .map(|item| scalar(item.get_ref()))
            .collect::<Option<Vec<_>>>(),
        (value, false) => scalar(value).map(|value| vec![value]),
    };
    let values =
        values.ok_or_else(|| ConfigError(format!("{place}: expected a string or a number")))?;
    let mut args = Vec::new();
    for value in values {
        args.push(flag.clone());
        args.push(OsString::from(value));
    }
    // The flag alone in a command of its own: clap checks the values with the flag's parser,
    // and its error is about this key only.
    Command::new("setting")
        .no_binary_name(true)
        .arg(arg.clone().required(false).global(false))
        .try_get_matches_from(&args)
        .map_err(|err| ConfigError(format!("{place}: {}", clap_reason(&err))))?;
    Ok(Setting {
        section: section.map(str::to_owned),
        id: arg.get_id().to_string(),
        args,
    })
}

/// A string, integer or float as the text a flag would be given.
fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(text) => Some(text.to_string()),
        DeValue::Integer(number) => Some(number.as_str().replace('_', "")),
        DeValue::Float(number) => Some(number.as_str().replace('_', "")),
        _ => None,
    }
}

/// The keys a section (or the top, for `None`) accepts.
pub(crate) fn known_keys(command: &Command, section: Option<&str>) -> Vec<String> {
    command
        .get_arguments()
        .filter(|arg| section.is_some() || arg.is_global_set())
        .filter_map(|arg| arg.get_long())
        .filter(|long| is_setting(long))
        .map(str::to_owned)
        .collect()
}

/// Whether the flag `--key` is a setting the file may hold (not `--config`, `--json`, `--help`).
pub(crate) fn is_setting(key: &str) -> bool {
    !NOT_SETTINGS.contains(&key)
}

/// clap's reason a value was refused, without its "error:" prefix and usage tip.
fn clap_reason(err: &clap::Error) -> String {
    let rendered = err.to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .trim()
        .to_owned()
}

/// `path:line:column` of a byte offset in the file.
struct Location {
    path: PathBuf,
    line: usize,
    column: usize,
}

impl Location {
    fn new(path: &Path, text: &str, offset: usize) -> Location {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map_or(0, |tail| tail.chars().count())
            + 1;
        Location {
            path: path.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}
