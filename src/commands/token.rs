//! `kvs-raft token create`: a new random client token and its token-file line (docs/security.md).

use crate::commands::output::outln;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::http::auth::{self, Role, TokenEntry, Tokens};

/// Make a token named `name` with `role`; print it and its file line, or append the line to `append`.
pub fn create(name: &str, role: Role, append: Option<&Path>) -> anyhow::Result<()> {
    let token = auth::new_token();
    let entry = TokenEntry::new(name, role, token.as_bytes());
    let line = entry.line();
    // The line must read back as this entry (this also checks the name).
    let parsed = Tokens::parse(line.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        parsed == Tokens::from_entries(vec![entry]),
        "the token file line does not read back"
    );
    match append {
        None => {
            outln!("token: {token}");
            outln!("line:  {line}");
            eprintln!(
                "The token is shown once and stored nowhere. Add the line to the token file of every node \
                 (--auth-token-file), then send each node SIGHUP."
            );
        }
        Some(path) => {
            append_line(path, name, &line)?;
            outln!("{token}");
            eprintln!(
                "Added {name:?} ({role}) to {}. Copy the file to every node and send each SIGHUP.",
                path.display()
            );
        }
    }
    Ok(())
}

fn append_line(path: &Path, name: &str, line: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let existing = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let text = String::from_utf8(existing)
        .with_context(|| format!("token file {} is not UTF-8", path.display()))?;
    let separator = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let addition = format!("{separator}{line}\n");
    // Refuse what the node would refuse: a malformed file, a name taken.
    Tokens::parse(format!("{text}{addition}").as_bytes()).map_err(|e| {
        anyhow::anyhow!(
            "token file {} with {name:?} added would be invalid: {e}",
            path.display()
        )
    })?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    file.write_all(addition.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", path.display()))
}
