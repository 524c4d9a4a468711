//! Reads the `name = value` data files under `tests/data/`.

use std::path::Path;

/// One block of `name = value` lines.
pub(crate) struct Block(Vec<(String, String)>);

impl Block {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn field(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("data block lacks `{name}`"))
    }

    pub(crate) fn hex(&self, name: &str) -> Vec<u8> {
        const_hex::decode(self.field(name)).unwrap_or_else(|e| panic!("`{name}` is not hex: {e}"))
    }
}

/// The blocks of `tests/data/<file>`, separated by blank lines; `#` lines are comments.
pub(crate) fn blocks(file: &str) -> Vec<Block> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut blocks = Vec::new();
    let mut current = Vec::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(Block(std::mem::take(&mut current)));
            }
            continue;
        }
        let (name, value) = line
            .split_once(" = ")
            .unwrap_or_else(|| panic!("{}: not `name = value`: {line}", path.display()));
        current.push((name.to_owned(), value.to_owned()));
    }
    if !current.is_empty() {
        blocks.push(Block(current));
    }
    blocks
}
