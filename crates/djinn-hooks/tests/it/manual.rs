//! `completions` and `manpages`: generated from the same clap definitions as `--help`, so each
//! names every command and flag the binary accepts.

use std::collections::BTreeSet;
use std::process::Command;

use crate::Env;

/// The long flags `--help` lists for `command` (`--db`, `--url`, …).
fn flags_in_help(env: &Env, command: &[&str]) -> BTreeSet<String> {
    let mut args = command.to_vec();
    args.push("--help");
    let help = env.run(&args, None).ok().to_owned();
    help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_has_a_man_page_naming_each_of_its_flags() {
    let env = Env::new();
    let dir = env.path("man");
    let listed = env.run(&["manpages", dir.to_str().unwrap()], None);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    assert_eq!(listed.ok().lines().count(), pages.len(), "{listed:?}");
    for command in [
        "hook-create",
        "worker",
        "serve",
        "deliveries-show",
        "completions",
    ] {
        let page = format!("djinn-hooks-{command}.1");
        assert!(pages.contains(&page), "no {page} in {pages:?}");
    }
    assert!(pages.contains(&"djinn-hooks.1".to_owned()), "{pages:?}");
    assert!(
        !pages.iter().any(|page| page.contains("-help")),
        "clap's help: {pages:?}"
    );
    for page in &pages {
        let command: Vec<&str> = page
            .trim_end_matches(".1")
            .strip_prefix("djinn-hooks")
            .unwrap()
            .split('-')
            .filter(|word| !word.is_empty())
            .collect();
        // `rotate-secret` is one command: rejoin words after the first that are not commands.
        let command = match command.as_slice() {
            ["hook", "rotate", "secret"] => vec!["hook", "rotate-secret"],
            _ => command,
        };
        let roff = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(roff.contains(".TH "), "{page} is not a man page");
        let roff = roff.replace("\\-", "-");
        for flag in flags_in_help(&env, &command) {
            assert!(roff.contains(&flag), "{page} lacks {flag}");
        }
    }
}

#[test]
fn the_completion_scripts_name_every_command_and_bash_s_parses() {
    let env = Env::new();
    let help = env.run(&["--help"], None).ok().to_owned();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        // A command's line starts two columns in; a wrapped description further in.
        .filter(|line| !line[2..].starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    assert!(commands.len() >= 15, "{commands:?}");
    for shell in ["bash", "zsh", "fish"] {
        let script = env.run(&["completions", shell], None).ok().to_owned();
        for command in &commands {
            assert!(script.contains(command), "{shell} script lacks {command}");
        }
        assert!(
            script.contains("max-in-flight"),
            "{shell} script lacks hook create's flags"
        );
    }
    let bash = env.run(&["completions", "bash"], None).ok().to_owned();
    let path = env.path("djinn-hooks.bash");
    std::fs::write(&path, bash).unwrap();
    let parsed = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(parsed.success(), "bash -n rejected the script");
    let run = env.run(&["completions", "tcsh"], None);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("tcsh"), "{run:?}");
}
