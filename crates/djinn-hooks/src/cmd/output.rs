//! Output helpers: aligned text tables, pretty JSON, durations and times, commands for people.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// A text table: an upper-case header row and rows of cells, columns aligned and two spaces
/// apart, no borders, no trailing spaces. Laid out by `comfy-table` (no borders, no padding but
/// the gap after each column but the last).
#[derive(Debug)]
pub(crate) struct Table {
    table: comfy_table::Table,
}

impl Table {
    /// A table with these column names.
    pub(crate) fn new(header: &[&'static str]) -> Table {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::NOTHING)
            .set_header(header.iter().map(|h| h.to_uppercase()));
        let last = header.len().saturating_sub(1);
        for (i, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, if i == last { 0 } else { 2 }));
        }
        Table { table }
    }

    /// Adds a row (as many cells as columns).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.table.column_count());
        self.table.add_row(cells);
    }

    /// Renders the table, each line ending in a newline.
    pub(crate) fn render(&self) -> String {
        let mut out = self.table.trim_fmt();
        out.push('\n');
        out
    }

    /// Prints the table to stdout.
    pub(crate) fn print(&self) {
        out!("{}", self.render());
    }
}

/// Prints a value as pretty JSON on stdout, with a trailing newline.
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_bytes(text.as_bytes());
    Ok(())
}

/// Writes to stdout (see `outln!`).
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    write_bytes(args.to_string().as_bytes());
}

/// Writes bytes to stdout; a closed pipe ends the process with exit code 0
/// (the reader took what it wanted), another write error with exit code 1.
pub(crate) fn write_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(bytes).and_then(|()| out.flush()) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("djinn-hooks: cannot write to stdout: {err}");
        std::process::exit(1);
    }
}

/// A duration for people: `850µs`, `12.3ms`, `1.20s`.
pub(crate) fn duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// A time as RFC 3339 in UTC, to the second.
pub(crate) fn time(t: time::OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// This program as the user can type it in a follow-up command: `djinn-hooks`
/// when that name on the `PATH` is this executable, else the executable's path
/// relative to the current folder when it is under it
/// (`target/release/djinn-hooks`, as after `cargo run`), else its absolute
/// path, else (no path known) `djinn-hooks`. Quoted for the shell if needed.
pub(crate) fn program() -> String {
    let exe = std::env::current_exe().ok();
    program_for(
        exe.as_deref(),
        std::env::current_dir().ok().as_deref(),
        std::env::var_os("PATH"),
    )
}

/// [`program`] for a given executable, current folder and `PATH`.
fn program_for(exe: Option<&Path>, cwd: Option<&Path>, path_var: Option<OsString>) -> String {
    const NAME: &str = "djinn-hooks";
    let Some(exe) = exe.map(|e| e.canonicalize().unwrap_or_else(|_| e.to_owned())) else {
        return NAME.to_owned();
    };
    // The first `djinn-hooks` on the PATH is what the bare name runs.
    let on_path = path_var
        .iter()
        .flat_map(std::env::split_paths)
        .find_map(|dir| {
            let candidate = dir.join(format!("{NAME}{}", std::env::consts::EXE_SUFFIX));
            candidate.is_file().then_some(candidate)
        });
    if on_path.is_some_and(|found| found.canonicalize().is_ok_and(|found| found == exe)) {
        return NAME.to_owned();
    }
    let relative = cwd
        .and_then(|cwd| cwd.canonicalize().ok())
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(Path::to_owned))
        .map(|rel| {
            if rel.components().count() == 1 {
                Path::new(".").join(rel)
            } else {
                rel
            }
        });
    shell_word(&relative.unwrap_or(exe))
}

/// A path as a shell word (quoted when it needs to be).
pub(crate) fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=,@".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_is_the_shortest_command_that_runs_this_executable() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let bin = root.join("target/release");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join(format!("djinn-hooks{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(&exe, b"").unwrap();
        let other = root.join("elsewhere");
        std::fs::create_dir_all(other.join("bin")).unwrap();
        std::fs::write(
            other.join(format!("bin/djinn-hooks{}", std::env::consts::EXE_SUFFIX)),
            b"",
        )
        .unwrap();
        let path = |dirs: &[&Path]| Some(std::env::join_paths(dirs).unwrap());
        let check = |cwd: &Path, path_var: Option<OsString>, expect: &str| {
            assert_eq!(program_for(Some(&exe), Some(cwd), path_var), expect);
        };

        // `cargo run` from the clone: relative to the current folder.
        check(&root, None, "target/release/djinn-hooks");
        check(&bin, None, "./djinn-hooks");
        // Elsewhere: absolute.
        check(&other, None, &shell_word(&exe));
        // On the PATH (and first there): the bare name.
        check(&other, path(&[&bin]), "djinn-hooks");
        check(&root, path(&[&root, &bin]), "djinn-hooks");
        // Another djinn-hooks first on the PATH: not the bare name.
        check(
            &root,
            path(&[&other.join("bin"), &bin]),
            "target/release/djinn-hooks",
        );
        // No executable known.
        assert_eq!(program_for(None, Some(&root), None), "djinn-hooks");
    }

    #[test]
    fn tables_align_columns_two_spaces_apart_without_trailing_spaces() {
        let mut table = Table::new(&["id", "duration", "result"]);
        table.row(vec!["1".into(), "850µs".into(), "ok".into()]);
        table.row(vec!["12345".into(), "1.20s".into(), "HTTP 500".into()]);
        assert_eq!(
            table.render(),
            "ID     DURATION  RESULT\n\
             1      850µs     ok\n\
             12345  1.20s     HTTP 500\n"
        );
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word(Path::new("djinn-demo.db")), "djinn-demo.db");
        assert_eq!(shell_word(Path::new("/tmp/a b.db")), "'/tmp/a b.db'");
        assert_eq!(shell_word(Path::new("it's.db")), r"'it'\''s.db'");
    }
}
